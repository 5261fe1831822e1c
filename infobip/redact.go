package infobip

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUpstreamText bounds, in bytes, every excerpt of text that came from
// upstream (an error body, a status description) and is kept in an error,
// a stored reason or a log line.
const MaxUpstreamText = 300

// Redacted stands where the API key, in any of its spellings, was.
const Redacted = "[redacted]"

// withheldText replaces a whole excerpt that still held the key in a
// spelling the literal replacement did not catch (mixed escapes, say).
const withheldText = "[upstream text withheld: it echoed the API key]"

// Redactor removes one API key from upstream text in every spelling an
// echoing server or proxy may use: any letter case, percent-encoded (with
// %20 or + for a space), JSON-escaped, HTML-escaped, and base64 of the key
// or of "App <key>" in either alphabet and at any alignment inside a longer
// base64 run. Text that still decodes to the key after that is withheld
// whole. The zero Redactor redacts nothing.
type Redactor struct {
	key      string
	variants []string // lower-cased literal spellings, longest first
}

// NewRedactor builds the redactor of key.
func NewRedactor(key string) Redactor {
	if key == "" {
		return Redactor{}
	}
	set := map[string]bool{}
	add := func(v string) {
		if len(v) >= 4 {
			set[strings.ToLower(v)] = true
		}
	}
	for _, k := range []string{key, "App " + key} {
		add(k)
		add(url.QueryEscape(k))
		add(url.PathEscape(k))
		add(strings.ReplaceAll(url.QueryEscape(k), "+", "%20"))
		if b, err := json.Marshal(k); err == nil {
			add(strings.Trim(string(b), `"`))
		}
		q := strconv.Quote(k)
		add(q[1 : len(q)-1])
		add(html.EscapeString(k))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			add(enc.EncodeToString([]byte(k)))
			for off := 0; off < 3; off++ {
				add(base64Core(enc, k, off))
			}
		}
	}
	r := Redactor{key: key}
	for v := range set {
		r.variants = append(r.variants, v)
	}
	// Longest first, so that "App <key>" goes before the bare key inside it.
	sortByLengthDesc(r.variants)
	return r
}

// base64Core is the part of the base64 of key, preceded by off bytes of
// anything, that depends on the key's bytes alone: what a base64 run
// holding the key at that alignment must contain.
func base64Core(enc *base64.Encoding, key string, off int) string {
	s := enc.WithPadding(base64.NoPadding).EncodeToString([]byte(strings.Repeat("\x00", off) + key))
	skip := [3]int{0, 2, 3}[off]
	end := len(s)
	if (off+len(key))%3 != 0 {
		end-- // the last character mixes in the padding bits
	}
	if end <= skip {
		return ""
	}
	return s[skip:end]
}

func sortByLengthDesc(v []string) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && (len(v[j]) > len(v[j-1]) || (len(v[j]) == len(v[j-1]) && v[j] < v[j-1])); j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// Redact returns s with every spelling of the key replaced by Redacted.
func (r Redactor) Redact(s string) string {
	if r.key == "" || s == "" {
		return s
	}
	for _, v := range r.variants {
		s = replaceFold(s, v, Redacted)
	}
	if r.holdsKey(s) {
		return withheldText
	}
	return s
}

// holdsKey reports whether s, once unescaped in the ways upstream text may
// be, still spells the key.
func (r Redactor) holdsKey(s string) bool {
	key := strings.ToLower(r.key)
	forms := []string{s, html.UnescapeString(s)}
	if u, err := url.QueryUnescape(s); err == nil {
		forms = append(forms, u)
	}
	if u, err := url.PathUnescape(s); err == nil {
		forms = append(forms, u)
	}
	forms = append(forms, unescapeBackslashes(s))
	for _, f := range forms {
		if strings.Contains(strings.ToLower(f), key) {
			return true
		}
	}
	return false
}

// replaceFold replaces every occurrence of lowerOld (already lower-cased)
// in s, compared without regard to case, by repl.
func replaceFold(s, lowerOld, repl string) string {
	if lowerOld == "" {
		return s
	}
	var b strings.Builder
	i := 0
	for {
		j := indexFold(s[i:], lowerOld)
		if j < 0 {
			break
		}
		b.WriteString(s[i : i+j])
		b.WriteString(repl)
		i += j + len(lowerOld)
	}
	if i == 0 {
		return s
	}
	b.WriteString(s[i:])
	return b.String()
}

// indexFold finds lowerOld in s ignoring ASCII case. Keys and their
// encodings are ASCII, so a byte-wise comparison is exact and keeps offsets
// into s valid.
func indexFold(s, lowerOld string) int {
	n := len(lowerOld)
	for i := 0; i+n <= len(s); i++ {
		match := true
		for k := 0; k < n; k++ {
			c := s[i+k]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lowerOld[k] {
				match = false
				break
			}
		}
		if match {
			return i
		}
	}
	return -1
}

// Excerpt is the text upstream may hand to a stored reason, a log line or
// an API answer: the key redacted in any spelling, control characters and
// runs of white space folded to one space, invalid UTF-8 replaced, and at
// most MaxUpstreamText bytes, cut on a rune boundary.
func (r Redactor) Excerpt(s string) string {
	// Redact before cutting, so that a cut cannot leave a key half-spelled.
	return boundText(r.Redact(sanitizeText(s)))
}

// sanitizeText makes s valid UTF-8 without control or format characters
// (CR, LF, NUL, U+202E...), white space folded to single spaces.
func sanitizeText(s string) string {
	if len(s) > 64*MaxUpstreamText {
		s = s[:64*MaxUpstreamText] // enough to redact a key spanning the cut of the final excerpt
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, c := range s {
		if unicode.IsControl(c) || unicode.IsSpace(c) || unicode.Is(unicode.Cf, c) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(c)
	}
	return b.String()
}

func boundText(s string) string {
	if len(s) <= MaxUpstreamText {
		return s
	}
	const more = "..."
	cut := MaxUpstreamText - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// unescapeBackslashes undoes JSON and Go string escapes (\u006b, \x6b, \/)
// wherever they appear, leaving anything else as it is: a tolerant decoder
// for text that is only partly a JSON string.
func unescapeBackslashes(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch c := s[i+1]; {
		case (c == 'u' || c == 'U') && i+6 <= len(s):
			if v, err := strconv.ParseUint(s[i+2:i+6], 16, 32); err == nil {
				b.WriteRune(rune(v))
				i += 5
				continue
			}
		case c == 'x' && i+4 <= len(s):
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		case c == '/' || c == '\\' || c == '"' || c == '-':
			b.WriteByte(c)
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
