// Package secret seals the API keys ibmail stores (AES-256-GCM) and makes
// the random secrets it hands out, so that a copy of the database alone
// gives nobody a usable Infobip key.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeySize is the size of an AES-256 key.
const KeySize = 32

// Box seals and opens small secrets with one AES-256-GCM key.
type Box struct {
	aead  cipher.AEAD
	check []byte
}

// checkLabel is what a key's check value is the HMAC of: a fixed text, so
// that the store can tell keys apart without holding anything that helps
// recover one.
const checkLabel = "ibmail encryption key check v1"

// NewBox returns a Box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: the encryption key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(checkLabel))
	return &Box{aead: aead, check: mac.Sum(nil)}, nil
}

// Check is the key's check value: HMAC-SHA256 of a fixed label under the
// key. Stored beside the sealed values, it says whether a key is the one
// they were sealed under, and reveals nothing of the key.
func (b *Box) Check() []byte { return append([]byte(nil), b.check...) }

// KeyID is a short name of the key for messages and logs: the first bytes
// of its check value, in hex.
func (b *Box) KeyID() string { return CheckID(b.check) }

// CheckID is the key id of a check value, as KeyID gives it.
func CheckID(check []byte) string {
	if len(check) < 6 {
		return "none"
	}
	return hex.EncodeToString(check[:6])
}

// Seal encrypts plaintext; the result carries its own random nonce, and
// additional data binds it to its owner (a connection id) so that a sealed
// key copied onto another row does not open.
func (b *Box) Seal(plaintext, additional []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	rand.Read(nonce) //nolint:errcheck // crypto/rand.Read never fails
	return b.aead.Seal(nonce, nonce, plaintext, additional)
}

// ErrOpen says a sealed value could not be opened: another key, other
// additional data, or tampering. It never says more.
var ErrOpen = errors.New("secret: sealed value does not open with this key")

// Open decrypts what Seal made with the same additional data.
func (b *Box) Open(sealed, additional []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	out, err := b.aead.Open(nil, sealed[:n], sealed[n:], additional)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// ParseKey reads a key written as 64 hex digits or as base64 (standard or
// URL alphabet, padded or not) of 32 bytes.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if k, err := hex.DecodeString(s); err == nil && len(k) == KeySize {
		return k, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("secret: an encryption key is %d bytes written as 64 hex digits or base64", KeySize)
}

// LoadOrCreateKeyFile reads the key at path or, when there is no file,
// creates one with a new random key, readable by its owner only.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseKey(string(b))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	k := make([]byte, KeySize)
	rand.Read(k) //nolint:errcheck // crypto/rand.Read never fails
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, err
	}
	if _, err := f.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, err
	}
	return k, true, f.Close()
}

// Token returns a new random secret of n bytes, URL-safe base64 encoded.
func Token(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
