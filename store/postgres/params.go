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

// appendEventParams appends m as a JSON object, nil for an empty map, in
// map order: unlike store.AppendStringMap it does not sort the keys, since
// jsonb keeps its keys in an order of its own whatever the text's, and an
// ingest encodes the params of every event of a body through here. Strings
// are escaped as store.AppendStringMap escapes them, so both give the same
// jsonb.
func appendEventParams(b []byte, m map[string]string) []byte {
	if len(m) == 0 {
		return b
	}
	b = append(b, '{')
	first := true
	for k, v := range m {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	return append(b, '}')
}

// appendJSONString quotes s: plain printable ASCII, the usual case, as is,
// anything else through encoding/json, as store.AppendStringMap does.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
