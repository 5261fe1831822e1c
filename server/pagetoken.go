package server

import (
	"encoding/base64"
	"encoding/json"
	"hash/fnv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// pageToken is the decoded form of a page token. Tokens are opaque to
// clients; they carry the position to go on from and a digest of the query
// so that a token is refused when the criteria change between pages.
type pageToken struct {
	Query    uint64 `json:"q"`
	TimeUS   int64  `json:"t,omitempty"`
	ID       int64  `json:"i,omitempty"`
	AfterKey string `json:"k,omitempty"`
}

// queryDigest fingerprints the criteria a token belongs to.
func queryDigest(parts ...string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(parts, "\x00")))
	return h.Sum64()
}

func encodePageToken(t pageToken) string {
	b, _ := json.Marshal(t) // a struct of plain fields cannot fail to encode
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the zero token for "", and an error naming
// page_token when the token is not one this server made for this query.
func decodePageToken(s string, query uint64) (pageToken, error) {
	t := pageToken{Query: query}
	if s == "" {
		return t, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &t) != nil || t.Query != query {
		return pageToken{}, apiError(codes.InvalidArgument, ReasonInvalidPageToken,
			"page_token: not a token of this query; start again without it")
	}
	return t, nil
}

// pageSize applies a request's page_size: 0 takes the default, more than
// the maximum is capped, a negative size is an error.
func pageSize(requested int32, def, max int) (int, error) {
	switch {
	case requested < 0:
		return 0, invalidField("page_size", "must not be negative")
	case requested == 0:
		return def, nil
	case int(requested) > max:
		return max, nil
	default:
		return int(requested), nil
	}
}

func timeFromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// cutPage trims rows, fetched one past the page size, to the page and
// returns the token of the next page, made by after from the last row kept
// (empty on the last page).
func cutPage[T any](rows []T, size int, query uint64, after func(T) pageToken) ([]T, string) {
	if len(rows) <= size {
		return rows, ""
	}
	rows = rows[:size]
	t := after(rows[size-1])
	t.Query = query
	return rows, encodePageToken(t)
}
