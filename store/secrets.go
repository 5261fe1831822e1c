package store

import (
	"context"
	"errors"
	"time"
)

// ErrKeyMismatch says a write of a sealed value was refused because the
// value was sealed under another encryption key than the one the store's
// secrets are sealed under now: the writer was left behind by a key
// rotation, or started with the wrong key.
var ErrKeyMismatch = errors.New("sealed under another encryption key than the store's")

// ErrChanged says a conditional write found the row changed since it was
// read; the caller reads it again and retries.
var ErrChanged = errors.New("changed meanwhile")

// SealedValue is one secret the store keeps sealed, handed to a reseal
// function with the owner it is bound to.
type SealedValue struct {
	// Kind is "connection" (a connection's credentials) or "server" (a
	// server-wide secret).
	Kind string
	// Owner is the connection id or the server secret's name.
	Owner  string
	Sealed []byte
}

// ServerSecret is a secret shared by every replica of a store, such as the
// server-wide webhook secret, sealed by the server. While a rotation's grace
// lasts the previous value is kept too.
type ServerSecret struct {
	Name   string
	Sealed []byte
	// PreviousSealed is the value before the last rotation, accepted until
	// PreviousExpireTime; nil when there is none.
	PreviousSealed     []byte
	PreviousExpireTime time.Time
	UpdateTime         time.Time
	// SealedUnder, on a write, is the check value of the key that sealed
	// the values: the write is refused with ErrKeyMismatch unless it is the
	// store's. Empty: not checked. Never read back.
	SealedUnder []byte
}

// SecretStore keeps the check value of the encryption key and the
// server-wide secrets.
type SecretStore interface {
	// EncryptionKeyCheck returns the check value of the key the stored
	// secrets are sealed under; nil while no server has adopted one.
	EncryptionKeyCheck(ctx context.Context) ([]byte, error)
	// ResealSecrets replaces, in one transaction, every sealed value (each
	// connection's credentials, each server secret and its previous value)
	// by what reseal makes of it, and the key check value from by to. It
	// answers ErrKeyMismatch, changing nothing, when the stored check value
	// is not from (nil: none stored yet), and stops at reseal's first error.
	// Writes guarded by SealedUnder wait for it and then see the new check.
	ResealSecrets(ctx context.Context, from, to []byte, reseal func(SealedValue) ([]byte, error)) error
	// ServerSecret returns a server secret or ErrNotFound.
	ServerSecret(ctx context.Context, name string) (ServerSecret, error)
	// CreateServerSecret stores s unless a secret of that name exists, and
	// returns the one stored: s with created true, or the existing one, so
	// that replicas creating it at once agree on one.
	CreateServerSecret(ctx context.Context, s ServerSecret) (stored ServerSecret, created bool, err error)
	// UpdateServerSecret replaces a server secret's values if its sealed
	// value is still ifSealed: ErrChanged otherwise, ErrNotFound when there
	// is none.
	UpdateServerSecret(ctx context.Context, s ServerSecret, ifSealed []byte) error
}
