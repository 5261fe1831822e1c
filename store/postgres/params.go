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
// are escaped by store.AppendJSONString, as store.AppendStringMap's are, so
// both give the same jsonb.
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
		b = store.AppendJSONString(b, k)
		b = append(b, ':')
		b = store.AppendJSONString(b, v)
	}
	return append(b, '}')
}
