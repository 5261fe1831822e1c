package storetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// The check values of two keys, as the server would compute them.
var (
	checkA = []byte("check value of key A, 32 bytes..")
	checkB = []byte("check value of key B, 32 bytes..")
)

// resealTo marks every value as resealed under tag, so that the test sees
// which values the store handed over and what it kept.
func resealTo(tag string, seen *[]store.SealedValue) func(store.SealedValue) ([]byte, error) {
	return func(v store.SealedValue) ([]byte, error) {
		*seen = append(*seen, v)
		return append([]byte(tag+":"), v.Sealed...), nil
	}
}

func testEncryptionKeyCheck(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	if got, err := s.EncryptionKeyCheck(ctx); err != nil || got != nil {
		t.Fatalf("EncryptionKeyCheck of a new store = %q, %v; want nil", got, err)
	}
	for _, c := range []store.Connection{connection("conn-a", true), connection("conn-b", false)} {
		if err := s.CreateConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.CreateServerSecret(ctx, store.ServerSecret{Name: "webhook", Sealed: []byte("sealed"), PreviousSealed: []byte("prev"),
		PreviousExpireTime: at(time.Hour), UpdateTime: at(0)}); err != nil {
		t.Fatal(err)
	}

	var seen []store.SealedValue
	if err := s.ResealSecrets(ctx, nil, checkA, resealTo("A", &seen)); err != nil {
		t.Fatalf("ResealSecrets(nil -> A): %v", err)
	}
	want := []store.SealedValue{
		{Kind: "connection", Owner: "conn-a", Sealed: connection("conn-a", true).APIKeyCiphertext},
		{Kind: "connection", Owner: "conn-b", Sealed: connection("conn-b", false).APIKeyCiphertext},
		{Kind: "server", Owner: "webhook", Sealed: []byte("sealed")},
		{Kind: "server", Owner: "webhook", Sealed: []byte("prev")},
	}
	if len(seen) != len(want) {
		t.Fatalf("reseal saw %d values, want %d: %q", len(seen), len(want), seen)
	}
	for i := range want {
		if seen[i].Kind != want[i].Kind || seen[i].Owner != want[i].Owner || !bytes.Equal(seen[i].Sealed, want[i].Sealed) {
			t.Errorf("reseal value %d = %+v, want %+v", i, seen[i], want[i])
		}
	}
	tests := []struct {
		name     string
		from, to []byte
		fail     bool
		wantErr  error
		wantTag  string
		wantSeen int
	}{
		{"from a check that is not the stored one", nil, checkB, false, store.ErrKeyMismatch, "A", 0},
		{"from another key", checkB, checkA, false, store.ErrKeyMismatch, "A", 0},
		{"a value that does not reseal", checkA, checkB, true, errNoReseal, "A", 1},
		{"rotation A -> B", checkA, checkB, false, nil, "B:A", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []store.SealedValue
			fn := resealTo("B", &seen)
			if tt.fail {
				fn = func(v store.SealedValue) ([]byte, error) { seen = append(seen, v); return nil, errNoReseal }
			}
			if err := s.ResealSecrets(ctx, tt.from, tt.to, fn); !errors.Is(err, tt.wantErr) {
				t.Fatalf("ResealSecrets: err = %v, want %v", err, tt.wantErr)
			}
			if len(seen) != tt.wantSeen {
				t.Errorf("reseal saw %d values, want %d", len(seen), tt.wantSeen)
			}
			wantCheck := checkA
			if tt.wantErr == nil {
				wantCheck = tt.to
			}
			if got, err := s.EncryptionKeyCheck(ctx); err != nil || !bytes.Equal(got, wantCheck) {
				t.Errorf("EncryptionKeyCheck = %q, %v; want %q", got, err, wantCheck)
			}
			c, err := s.GetConnection(ctx, "conn-a")
			if err != nil {
				t.Fatal(err)
			}
			if wantCT := append([]byte(tt.wantTag+":"), connection("conn-a", true).APIKeyCiphertext...); !bytes.Equal(c.APIKeyCiphertext, wantCT) {
				t.Errorf("conn-a ciphertext = %q, want %q", c.APIKeyCiphertext, wantCT)
			}
			sc, err := s.ServerSecret(ctx, "webhook")
			if err != nil {
				t.Fatal(err)
			}
			if w := tt.wantTag + ":prev"; string(sc.PreviousSealed) != w {
				t.Errorf("server secret previous = %q, want %q", sc.PreviousSealed, w)
			}
		})
	}
}

var errNoReseal = errors.New("does not open")

func testSealedWritesGuarded(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	if err := s.ResealSecrets(ctx, nil, checkA, func(v store.SealedValue) ([]byte, error) { return v.Sealed, nil }); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		under   []byte
		wantErr error
	}{
		{"the store's key", checkA, nil},
		{"a retired key", checkB, store.ErrKeyMismatch},
		{"not checked", nil, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connection("conn-"+string(rune('a'+i)), true)
			c.SealedUnder = tt.under
			if err := s.CreateConnection(ctx, c); !errors.Is(err, tt.wantErr) {
				t.Fatalf("CreateConnection: err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if _, err := s.GetConnection(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("a refused create stored the connection: %v", err)
				}
				return
			}
			u := c
			u.APIKeyCiphertext = []byte("resealed")
			u.SealedUnder = checkB
			if err := s.UpdateConnection(ctx, u); !errors.Is(err, store.ErrKeyMismatch) {
				t.Errorf("UpdateConnection under a retired key: err = %v, want ErrKeyMismatch", err)
			}
			if err := s.UpdateConnectionIf(ctx, u, c.APIKeyCiphertext); !errors.Is(err, store.ErrKeyMismatch) {
				t.Errorf("UpdateConnectionIf under a retired key: err = %v, want ErrKeyMismatch", err)
			}
			u.SealedUnder = tt.under
			if err := s.UpdateConnectionIf(ctx, u, []byte("an older ciphertext")); !errors.Is(err, store.ErrChanged) {
				t.Errorf("UpdateConnectionIf on a changed ciphertext: err = %v, want ErrChanged", err)
			}
			if err := s.UpdateConnectionIf(ctx, u, c.APIKeyCiphertext); err != nil {
				t.Errorf("UpdateConnectionIf: %v", err)
			}
			got, err := s.GetConnection(ctx, c.ID)
			if err != nil || string(got.APIKeyCiphertext) != "resealed" {
				t.Errorf("after UpdateConnectionIf: ciphertext %q, %v; want resealed", got.APIKeyCiphertext, err)
			}
			if len(got.SealedUnder) != 0 {
				t.Errorf("SealedUnder read back: %q", got.SealedUnder)
			}
		})
	}
	missing := connection("conn-missing", false)
	if err := s.UpdateConnectionIf(ctx, missing, missing.APIKeyCiphertext); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateConnectionIf of a missing connection: err = %v, want ErrNotFound", err)
	}
	if _, _, err := s.CreateServerSecret(ctx, store.ServerSecret{Name: "webhook", Sealed: []byte("x"), UpdateTime: at(0), SealedUnder: checkB}); !errors.Is(err, store.ErrKeyMismatch) {
		t.Errorf("CreateServerSecret under a retired key: err = %v, want ErrKeyMismatch", err)
	}
}

func testServerSecrets(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.ServerSecret(ctx, "webhook"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ServerSecret of a new store: err = %v, want ErrNotFound", err)
	}
	// Replicas starting at once each offer their own; all get the first.
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		got     = map[string]bool{}
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc, c, err := s.CreateServerSecret(ctx, store.ServerSecret{Name: "webhook", Sealed: []byte{byte('a' + i)}, UpdateTime: at(0)})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if c {
				created++
			}
			got[string(sc.Sealed)] = true
		}()
	}
	wg.Wait()
	if created != 1 || len(got) != 1 {
		t.Fatalf("%d concurrent creates: %d created, %d distinct secrets returned; want 1 and 1", n, created, len(got))
	}
	cur, err := s.ServerSecret(ctx, "webhook")
	if err != nil || !got[string(cur.Sealed)] {
		t.Fatalf("ServerSecret = %q, %v; want the created one", cur.Sealed, err)
	}
	next := store.ServerSecret{Name: "webhook", Sealed: []byte("next"), PreviousSealed: cur.Sealed, PreviousExpireTime: at(time.Hour), UpdateTime: at(time.Minute)}
	if err := s.UpdateServerSecret(ctx, next, []byte("not the stored one")); !errors.Is(err, store.ErrChanged) {
		t.Errorf("UpdateServerSecret on a changed value: err = %v, want ErrChanged", err)
	}
	if err := s.UpdateServerSecret(ctx, store.ServerSecret{Name: "other", Sealed: []byte("x")}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateServerSecret of a missing secret: err = %v, want ErrNotFound", err)
	}
	if err := s.UpdateServerSecret(ctx, next, cur.Sealed); err != nil {
		t.Fatalf("UpdateServerSecret: %v", err)
	}
	after, err := s.ServerSecret(ctx, "webhook")
	if err != nil {
		t.Fatal(err)
	}
	if string(after.Sealed) != "next" || !bytes.Equal(after.PreviousSealed, cur.Sealed) {
		t.Errorf("after rotation: %q, previous %q; want next, %q", after.Sealed, after.PreviousSealed, cur.Sealed)
	}
	sameTime(t, "previous expire time", after.PreviousExpireTime, at(time.Hour))
	sameTime(t, "update time", after.UpdateTime, at(time.Minute))
	retired := store.ServerSecret{Name: "webhook", Sealed: after.Sealed, UpdateTime: at(2 * time.Minute)}
	if err := s.UpdateServerSecret(ctx, retired, after.Sealed); err != nil {
		t.Fatal(err)
	}
	if after, err = s.ServerSecret(ctx, "webhook"); err != nil || after.PreviousSealed != nil || !after.PreviousExpireTime.IsZero() {
		t.Errorf("after retiring the previous: %+v, %v; want none", after, err)
	}
}

func testPreviousWebhookDigest(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	c := connection("conn-a", true)
	if err := s.CreateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateConnection(ctx, connection("conn-b", false)); err != nil {
		t.Fatal(err)
	}
	rotated := c
	rotated.PreviousWebhookSecretDigest = c.WebhookSecretDigest
	rotated.PreviousWebhookSecretExpireTime = at(time.Hour)
	rotated.WebhookSecretDigest = []byte("digest of the new secret")
	if err := s.UpdateConnectionIf(ctx, rotated, c.APIKeyCiphertext); err != nil {
		t.Fatal(err)
	}
	for _, d := range [][]byte{rotated.WebhookSecretDigest, rotated.PreviousWebhookSecretDigest} {
		got, err := s.ConnectionByWebhookDigest(ctx, d)
		if err != nil || got.ID != "conn-a" {
			t.Fatalf("ConnectionByWebhookDigest(%q) = %q, %v; want conn-a", d, got.ID, err)
		}
		if !bytes.Equal(got.WebhookSecretDigest, rotated.WebhookSecretDigest) || !bytes.Equal(got.PreviousWebhookSecretDigest, rotated.PreviousWebhookSecretDigest) {
			t.Errorf("digests read back %q, %q", got.WebhookSecretDigest, got.PreviousWebhookSecretDigest)
		}
		sameTime(t, "previous expire time", got.PreviousWebhookSecretExpireTime, at(time.Hour))
	}
	retired := rotated
	retired.PreviousWebhookSecretDigest, retired.PreviousWebhookSecretExpireTime = nil, time.Time{}
	if err := s.UpdateConnection(ctx, retired); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConnectionByWebhookDigest(ctx, rotated.PreviousWebhookSecretDigest); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("by the retired digest: err = %v, want ErrNotFound", err)
	}
}
