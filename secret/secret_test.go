package secret

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	box, err := NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := box.Seal([]byte("api-key-1234"), []byte("conn-a"))
	if bytes.Contains(sealed, []byte("api-key-1234")) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := box.Open(sealed, []byte("conn-a"))
	if err != nil || string(got) != "api-key-1234" {
		t.Fatalf("Open = %q, %v; want the plaintext", got, err)
	}
	if again := box.Seal([]byte("api-key-1234"), []byte("conn-a")); bytes.Equal(again, sealed) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	other, _ := NewBox(bytes.Repeat([]byte{8}, KeySize))
	tests := []struct {
		name   string
		box    *Box
		sealed []byte
		ad     string
	}{
		{"other owner", box, sealed, "conn-b"},
		{"other key", other, sealed, "conn-a"},
		{"tampered", box, append(append([]byte{}, sealed[:len(sealed)-1]...), sealed[len(sealed)-1]^1), "conn-a"},
		{"truncated", box, sealed[:5], "conn-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.box.Open(tt.sealed, []byte(tt.ad)); !errors.Is(err, ErrOpen) {
				t.Errorf("err = %v, want ErrOpen", err)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{strings.Repeat("ab", 32), false},
		{"  " + strings.Repeat("00", 32) + "\n", false},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", false},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false},
		{strings.Repeat("ab", 16), true},
		{"not a key", true},
	}
	for _, tt := range tests {
		k, err := ParseKey(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseKey(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
		}
		if err == nil && len(k) != KeySize {
			t.Errorf("ParseKey(%q) = %d bytes", tt.in, len(k))
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "encryption-key")
	k1, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created || len(k1) != KeySize {
		t.Fatalf("first call: %d bytes, created %v, %v", len(k1), created, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %o, want 600", perm)
	}
	k2, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Errorf("second call: created %v, same key %v, %v", created, bytes.Equal(k1, k2), err)
	}
	os.WriteFile(path, []byte("garbage"), 0o600) //nolint:errcheck
	if _, _, err := LoadOrCreateKeyFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("garbage key file: err = %v, want one naming the file", err)
	}
}
