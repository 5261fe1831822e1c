package storetest

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// connection makes a connection with every field set; withDigest false
// leaves it without a webhook secret.
func connection(id string, withDigest bool) store.Connection {
	c := store.Connection{
		ID:               id,
		DisplayName:      "Account " + id,
		APIKeyCiphertext: []byte("sealed\x00key of " + id),
		APIKeyHint:       "…" + id,
		BaseURL:          "https://" + id + ".api.infobip.com",
		ApplicationID:    "app-" + id,
		EntityID:         "entity-" + id,
		RateLimit:        100,
		CreateTime:       at(0),
		UpdateTime:       at(time.Second),
	}
	if withDigest {
		c.WebhookSecretDigest = []byte("sha256 of the secret of " + id)
	}
	return c
}

func sameConnection(t *testing.T, got, want store.Connection) {
	t.Helper()
	if got.ID != want.ID || got.DisplayName != want.DisplayName || got.APIKeyHint != want.APIKeyHint ||
		got.BaseURL != want.BaseURL || got.ApplicationID != want.ApplicationID || got.EntityID != want.EntityID ||
		got.RateLimit != want.RateLimit {
		t.Errorf("connection = %+v, want %+v", got, want)
	}
	if !bytes.Equal(got.APIKeyCiphertext, want.APIKeyCiphertext) || !bytes.Equal(got.WebhookSecretDigest, want.WebhookSecretDigest) {
		t.Errorf("connection %s secrets = %q, %q, want %q, %q", want.ID,
			got.APIKeyCiphertext, got.WebhookSecretDigest, want.APIKeyCiphertext, want.WebhookSecretDigest)
	}
	sameTime(t, "connection "+want.ID+" CreateTime", got.CreateTime, want.CreateTime)
	sameTime(t, "connection "+want.ID+" UpdateTime", got.UpdateTime, want.UpdateTime)
}

func connectionIDs(cs []store.Connection) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func testConnections(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	// Two without a digest: "no secret" must not collide with itself.
	all := []store.Connection{
		connection("conn-a", true), connection("conn-b", true), connection("conn-c", false), connection("conn-d", false),
	}
	for _, c := range all {
		if err := s.CreateConnection(ctx, c); err != nil {
			t.Fatalf("CreateConnection(%s): %v", c.ID, err)
		}
	}
	again := connection("conn-a", false)
	if err := s.CreateConnection(ctx, again); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("CreateConnection of a taken id: err = %v, want ErrAlreadyExists", err)
	}

	for _, c := range all {
		got, err := s.GetConnection(ctx, c.ID)
		if err != nil {
			t.Fatalf("GetConnection(%s): %v", c.ID, err)
		}
		sameConnection(t, got, c)
	}
	if _, err := s.GetConnection(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetConnection(nope): err = %v, want ErrNotFound", err)
	}

	t.Run("by digest", func(t *testing.T) {
		got, err := s.ConnectionByWebhookDigest(ctx, all[1].WebhookSecretDigest)
		if err != nil {
			t.Fatalf("ConnectionByWebhookDigest: %v", err)
		}
		sameConnection(t, got, all[1])
		for _, d := range [][]byte{[]byte("unknown digest"), nil, {}} {
			if _, err := s.ConnectionByWebhookDigest(ctx, d); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ConnectionByWebhookDigest(%q): err = %v, want ErrNotFound", d, err)
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			after string
			limit int
			want  []string
		}{
			{"", 0, []string{"conn-a", "conn-b", "conn-c", "conn-d"}},
			{"", 2, []string{"conn-a", "conn-b"}},
			{"conn-b", 2, []string{"conn-c", "conn-d"}},
			{"conn-bb", 10, []string{"conn-c", "conn-d"}},
			{"conn-d", 10, nil},
		}
		for _, tt := range tests {
			got, err := s.ListConnections(ctx, tt.after, tt.limit)
			if err != nil {
				t.Fatalf("ListConnections: %v", err)
			}
			if ids := connectionIDs(got); !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("ListConnections(%q, %d) = %q, want %q", tt.after, tt.limit, ids, tt.want)
			}
		}
		got, err := s.ListConnections(ctx, "conn-a", 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("ListConnections(conn-a, 1) = %v, %v", got, err)
		}
		sameConnection(t, got[0], all[1])
	})

	t.Run("update", func(t *testing.T) {
		u := store.Connection{
			ID: "conn-a", DisplayName: "Renamed", APIKeyCiphertext: []byte("new sealed key"), APIKeyHint: "…new",
			BaseURL: "https://new.api.infobip.com", ApplicationID: "app-2", EntityID: "entity-2",
			WebhookSecretDigest: []byte("rotated digest"), RateLimit: 7,
			CreateTime: at(time.Hour), // not replaced
			UpdateTime: at(2 * time.Hour),
		}
		if err := s.UpdateConnection(ctx, u); err != nil {
			t.Fatalf("UpdateConnection: %v", err)
		}
		want := u
		want.CreateTime = all[0].CreateTime
		got, err := s.GetConnection(ctx, "conn-a")
		if err != nil {
			t.Fatalf("GetConnection: %v", err)
		}
		sameConnection(t, got, want)
		if _, err := s.ConnectionByWebhookDigest(ctx, all[0].WebhookSecretDigest); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("by the replaced digest: err = %v, want ErrNotFound", err)
		}
		if got, err := s.ConnectionByWebhookDigest(ctx, u.WebhookSecretDigest); err != nil || got.ID != "conn-a" {
			t.Errorf("by the new digest = %q, %v; want conn-a", got.ID, err)
		}
		// Clearing the secret: conn-a joins the connections without one.
		u.WebhookSecretDigest = nil
		if err := s.UpdateConnection(ctx, u); err != nil {
			t.Fatalf("UpdateConnection without digest: %v", err)
		}
		if got, _ := s.GetConnection(ctx, "conn-a"); len(got.WebhookSecretDigest) != 0 {
			t.Errorf("digest after clearing = %q, want none", got.WebhookSecretDigest)
		}
		missing := connection("nope", true)
		if err := s.UpdateConnection(ctx, missing); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateConnection(nope): err = %v, want ErrNotFound", err)
		}
		if _, err := s.GetConnection(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateConnection(nope) created it: err = %v", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := s.DeleteConnection(ctx, "conn-d"); err != nil {
			t.Fatalf("DeleteConnection: %v", err)
		}
		if _, err := s.GetConnection(ctx, "conn-d"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetConnection after delete: err = %v, want ErrNotFound", err)
		}
		if err := s.DeleteConnection(ctx, "conn-d"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second DeleteConnection: err = %v, want ErrNotFound", err)
		}
		got, err := s.ListConnections(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if ids, want := connectionIDs(got), []string{"conn-a", "conn-b", "conn-c"}; !reflect.DeepEqual(ids, want) {
			t.Errorf("after delete, connections = %q, want %q", ids, want)
		}
	})
}

func sender(id, connectionID string) store.Sender {
	return store.Sender{
		ID: id, ConnectionID: connectionID, FromAddress: id + "@news.example.com",
		FromName: "News " + id, ReplyTo: "reply-" + id + "@example.com", CreateTime: at(time.Minute),
	}
}

func senderIDs(ss []store.Sender) []string {
	var out []string
	for _, sd := range ss {
		out = append(out, sd.ID)
	}
	return out
}

func testSenders(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	for _, id := range []string{"conn-a", "conn-b"} {
		if err := s.CreateConnection(ctx, connection(id, true)); err != nil {
			t.Fatal(err)
		}
	}
	senders := []store.Sender{sender("s1", "conn-a"), sender("s2", "conn-b"), sender("s3", "conn-a")}
	for _, sd := range senders {
		if err := s.CreateSender(ctx, sd); err != nil {
			t.Fatalf("CreateSender(%s): %v", sd.ID, err)
		}
	}
	if err := s.CreateSender(ctx, sender("s1", "conn-b")); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("CreateSender of a taken id: err = %v, want ErrAlreadyExists", err)
	}
	if err := s.CreateSender(ctx, sender("s9", "no-such-connection")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateSender of a missing connection: err = %v, want ErrNotFound", err)
	}
	if _, err := s.GetSender(ctx, "s9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("sender of a missing connection was stored: GetSender err = %v", err)
	}

	got, err := s.GetSender(ctx, "s3")
	if err != nil {
		t.Fatalf("GetSender: %v", err)
	}
	want := senders[2]
	if got.ID != want.ID || got.ConnectionID != want.ConnectionID || got.FromAddress != want.FromAddress ||
		got.FromName != want.FromName || got.ReplyTo != want.ReplyTo {
		t.Errorf("GetSender = %+v, want %+v", got, want)
	}
	sameTime(t, "sender CreateTime", got.CreateTime, want.CreateTime)

	tests := []struct {
		connection, after string
		limit             int
		want              []string
	}{
		{"", "", 0, []string{"s1", "s2", "s3"}},
		{"", "", 2, []string{"s1", "s2"}},
		{"", "s2", 0, []string{"s3"}},
		{"conn-a", "", 0, []string{"s1", "s3"}},
		{"conn-a", "s1", 0, []string{"s3"}},
		{"conn-a", "", 1, []string{"s1"}},
		{"conn-b", "s2", 0, nil},
		{"conn-z", "", 0, nil},
	}
	for _, tt := range tests {
		got, err := s.ListSenders(ctx, tt.connection, tt.after, tt.limit)
		if err != nil {
			t.Fatalf("ListSenders: %v", err)
		}
		if ids := senderIDs(got); !reflect.DeepEqual(ids, tt.want) {
			t.Errorf("ListSenders(%q, %q, %d) = %q, want %q", tt.connection, tt.after, tt.limit, ids, tt.want)
		}
	}

	// A connection stays while sender accounts use it.
	if err := s.DeleteConnection(ctx, "conn-a"); !errors.Is(err, store.ErrInUse) {
		t.Errorf("DeleteConnection in use: err = %v, want ErrInUse", err)
	}
	if _, err := s.GetConnection(ctx, "conn-a"); err != nil {
		t.Errorf("connection in use was deleted: %v", err)
	}
	for _, id := range []string{"s1", "s3"} {
		if err := s.DeleteSender(ctx, id); err != nil {
			t.Fatalf("DeleteSender(%s): %v", id, err)
		}
	}
	if err := s.DeleteSender(ctx, "s3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteSender: err = %v, want ErrNotFound", err)
	}
	if _, err := s.GetSender(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSender after delete: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteConnection(ctx, "conn-a"); err != nil {
		t.Errorf("DeleteConnection once unused: %v", err)
	}
	if err := s.DeleteConnection(ctx, "conn-b"); !errors.Is(err, store.ErrInUse) {
		t.Errorf("DeleteConnection(conn-b) with s2: err = %v, want ErrInUse", err)
	}
}
