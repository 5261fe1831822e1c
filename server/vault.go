package server

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/ibmail/ibmail/secret"
	"github.com/ibmail/ibmail/store"
)

// credentials are what a connection keeps sealed: the API key and the
// webhook secret (needed in the clear to build each send's notifyUrl).
type credentials struct {
	APIKey        string `json:"apiKey"`
	WebhookSecret string `json:"webhookSecret"`
}

// Vault seals and opens connections' credentials, bound to the connection
// id so that sealed values cannot be swapped between rows.
type Vault struct {
	box *secret.Box
}

// NewVault returns a Vault sealing with box.
func NewVault(box *secret.Box) *Vault { return &Vault{box: box} }

func (v *Vault) seal(connectionID string, c credentials) []byte {
	b, _ := json.Marshal(c) // two strings cannot fail to encode
	return v.box.Seal(b, []byte("connection:"+connectionID))
}

// open returns a connection's credentials. The error never carries them.
func (v *Vault) open(c store.Connection) (credentials, error) {
	b, err := v.box.Open(c.APIKeyCiphertext, []byte("connection:"+c.ID))
	if err != nil {
		return credentials{}, fmt.Errorf("connection %s: credentials do not open with the server's encryption key: %w", c.ID, err)
	}
	var cr credentials
	if err := json.Unmarshal(b, &cr); err != nil {
		return credentials{}, fmt.Errorf("connection %s: sealed credentials are damaged", c.ID)
	}
	return cr, nil
}

// webhookDigest is what the store keeps to recognise a webhook secret.
func webhookDigest(secret string) []byte {
	d := sha256.Sum256([]byte(secret))
	return d[:]
}
