package postgres

import (
	"encoding/json"

	"github.com/ibmail/ibmail/store"
)

// encodeParams is the jsonb the params and placeholders columns hold: nil,
// stored as NULL, for an empty map.
func encodeParams(m map[string]string) []byte {
	if len(m) == 0 {
		return nil
	}
	return store.AppendStringMap(nil, m)
}

// decodeParams reads a jsonb column back; NULL gives a nil map.
func decodeParams(b []byte) (map[string]string, error) {
	if b == nil {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}
