package sqlite

import "github.com/ibmail/ibmail/store"

// encodeParams is the JSON text the params and placeholders columns hold.
func encodeParams(m map[string]string) string {
	return string(store.AppendStringMap(nil, m))
}
