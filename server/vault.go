package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"

	"github.com/ibmail/ibmail/secret"
	"github.com/ibmail/ibmail/store"
)

// credentials are what a connection keeps sealed: the API key and the
// webhook secret (needed in the clear to build each send's notifyUrl).
type credentials struct {
	APIKey        string `json:"apiKey"`
	WebhookSecret string `json:"webhookSecret"`
}

// Vault seals and opens connections' credentials and the server-wide
// secrets, bound to their owner so that sealed values cannot be swapped
// between rows. Once bound to a store (Bind) it marks every sealed write
// with its key's check value, so that the store refuses the writes of a
// replica whose key a rotation retired, and it notices that retirement.
type Vault struct {
	box *secret.Box

	mu      sync.Mutex
	store   store.SecretStore
	log     *slog.Logger
	retired atomic.Bool
}

// NewVault returns a Vault sealing with box.
func NewVault(box *secret.Box) *Vault { return &Vault{box: box, log: slog.New(slog.DiscardHandler)} }

// KeySource names where a key came from, for messages: the environment
// variable or the file, never the key.
type KeySource struct {
	Box    *secret.Box
	Source string
}

// Bind checks the vault's key against the store's check value and, when
// the store has none yet or holds the previous key's, re-seals every stored
// secret under the vault's key in one transaction and moves the check
// value to it: how a store adopts its first key, and how a key is rotated
// (start with the new key and the previous one; afterwards the previous
// one is no longer needed). A key that matches neither is refused, with an
// error naming its source and both key ids, never a key.
func (v *Vault) Bind(ctx context.Context, st store.SecretStore, source string, previous *KeySource, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	current := v.box.Check()
	for attempt := 0; ; attempt++ {
		stored, err := st.EncryptionKeyCheck(ctx)
		if err != nil {
			return fmt.Errorf("encryption key check: %w", err)
		}
		switch {
		case bytes.Equal(stored, current):
			if previous != nil {
				log.Info("the stored secrets are sealed under the current encryption key; the previous key is no longer needed: start without it",
					slog.String("key_id", v.box.KeyID()), slog.String("previous_key_source", previous.Source))
			}
			v.bound(st, log)
			return nil
		case stored == nil || (previous != nil && bytes.Equal(stored, previous.Box.Check())):
			resealed := 0
			err := st.ResealSecrets(ctx, stored, current, func(sv store.SealedValue) ([]byte, error) {
				ad := additionalData(sv.Kind, sv.Owner)
				if _, err := v.box.Open(sv.Sealed, ad); err == nil {
					return sv.Sealed, nil
				}
				if previous != nil {
					if plain, err := previous.Box.Open(sv.Sealed, ad); err == nil {
						resealed++
						return v.box.Seal(plain, ad), nil
					}
				}
				hint := ""
				if previous == nil {
					hint = "; if it was sealed under an older key, give that key too (--previous-encryption-key-file or IBMAIL_PREVIOUS_ENCRYPTION_KEY)"
				}
				return nil, fmt.Errorf("%s %q: its sealed secret does not open with the encryption key from %s (key id %s)%s",
					sv.Kind, sv.Owner, source, v.box.KeyID(), hint)
			})
			if errors.Is(err, store.ErrKeyMismatch) && attempt < 3 {
				continue // another replica adopted or rotated meanwhile: look again
			}
			if err != nil {
				return err
			}
			if stored == nil {
				log.Info("the store adopted this server's encryption key", slog.String("key_id", v.box.KeyID()), slog.Int("resealed", resealed))
			} else {
				log.Info("encryption key rotated: every stored secret is re-sealed under the new key; restart the other replicas with it and retire the previous key",
					slog.String("key_id", v.box.KeyID()), slog.String("previous_key_id", secret.CheckID(stored)), slog.Int("resealed", resealed))
			}
			v.bound(st, log)
			return nil
		default:
			msg := fmt.Sprintf("the encryption key from %s (key id %s) is not the key this store's secrets are sealed under (key id %s): start with that key",
				source, v.box.KeyID(), secret.CheckID(stored))
			if previous != nil {
				msg += fmt.Sprintf("; the previous key from %s (key id %s) is not it either", previous.Source, previous.Box.KeyID())
			} else {
				msg += ", or, to rotate to this key, give that one as the previous key (--previous-encryption-key-file or IBMAIL_PREVIOUS_ENCRYPTION_KEY)"
			}
			return errors.New(msg)
		}
	}
}

func (v *Vault) bound(st store.SecretStore, log *slog.Logger) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.store, v.log = st, log
}

func (v *Vault) boundStore() store.SecretStore {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.store
}

// sealedUnder is the check value writes of sealed values carry (see
// store.Connection.SealedUnder): nil until the vault is bound.
func (v *Vault) sealedUnder() []byte {
	if v.boundStore() == nil {
		return nil
	}
	return v.box.Check()
}

// errKeyRetired answers calls that need a secret on a replica whose key a
// rotation retired: another replica, started with the new key, can serve.
var errKeyRetired = apiError(codes.Unavailable, ReasonEncryptionKeyRetired,
	"this server's encryption key is no longer the one the store's secrets are sealed under (a key rotation retired it): restart it with the current key; other replicas can serve")

// Verify reports whether the store's secrets are still sealed under the
// vault's key; once they are not (a rotation on another replica), it says
// so in the log, once, and answers errKeyRetired from then on. It is part
// of readiness.
func (v *Vault) Verify(ctx context.Context) error {
	st := v.boundStore()
	if st == nil {
		return nil
	}
	if v.retired.Load() {
		return errKeyRetired
	}
	stored, err := st.EncryptionKeyCheck(ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(stored, v.box.Check()) {
		if !v.retired.Swap(true) {
			v.log.Error("not ready: the store's secrets are now sealed under another encryption key (a key rotation); this server can neither open nor seal them: restart it with the new key",
				slog.String("key_id", v.box.KeyID()), slog.String("store_key_id", secret.CheckID(stored)))
		}
		return errKeyRetired
	}
	return nil
}

// additionalData binds a sealed value to its owner.
func additionalData(kind, owner string) []byte {
	if kind == "server" {
		return []byte("server-secret:" + owner)
	}
	return []byte("connection:" + owner)
}

func (v *Vault) seal(connectionID string, c credentials) []byte {
	b, _ := json.Marshal(c) // two strings cannot fail to encode
	return v.box.Seal(b, additionalData("connection", connectionID))
}

// openFailed explains a sealed value that does not open: a retired key
// when the store says so, else damage or a wrong key.
func (v *Vault) openFailed(ctx context.Context, what string, err error) error {
	if verr := v.Verify(ctx); errors.Is(verr, errKeyRetired) {
		return errKeyRetired
	}
	return fmt.Errorf("%s: does not open with the server's encryption key: %w", what, err)
}

// open returns a connection's credentials. The error never carries them.
func (v *Vault) open(ctx context.Context, c store.Connection) (credentials, error) {
	b, err := v.box.Open(c.APIKeyCiphertext, additionalData("connection", c.ID))
	if err != nil {
		return credentials{}, v.openFailed(ctx, "connection "+c.ID+" credentials", err)
	}
	var cr credentials
	if err := json.Unmarshal(b, &cr); err != nil {
		return credentials{}, fmt.Errorf("connection %s: sealed credentials are damaged", c.ID)
	}
	return cr, nil
}

// sealServer seals a server-wide secret.
func (v *Vault) sealServer(name, value string) []byte {
	return v.box.Seal([]byte(value), additionalData("server", name))
}

// openServer opens a server-wide secret.
func (v *Vault) openServer(ctx context.Context, name string, sealed []byte) (string, error) {
	b, err := v.box.Open(sealed, additionalData("server", name))
	if err != nil {
		return "", v.openFailed(ctx, "server secret "+name, err)
	}
	return string(b), nil
}

// webhookDigest is what the store keeps to recognise a webhook secret.
func webhookDigest(secret string) []byte {
	d := sha256.Sum256([]byte(secret))
	return d[:]
}
