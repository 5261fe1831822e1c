package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxKeptBodyBytes bounds the copy of a request body kept to name the
// field of a decode error: past it, the error names no field.
const maxKeptBodyBytes = 1 << 20

type bodyCopyKey struct{}

// bodyCopy is a reader that keeps the first maxKeptBodyBytes it passes on.
type bodyCopy struct {
	io.ReadCloser
	kept []byte
}

func (b *bodyCopy) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if room := maxKeptBodyBytes - len(b.kept); room > 0 {
		b.kept = append(b.kept, p[:min(n, room)]...)
	}
	return n, err
}

// withBodyCopy makes the request keep what it reads of its body, so that
// the error handler can say which field a decode error is about.
func withBodyCopy(r *http.Request) *http.Request {
	if r.Body == nil || r.Body == http.NoBody {
		return r
	}
	c := &bodyCopy{ReadCloser: r.Body}
	r = r.WithContext(context.WithValue(r.Context(), bodyCopyKey{}, c))
	r.Body = c
	return r
}

// decodePosition is protojson's "(line L:C)" of an error.
var decodePosition = regexp.MustCompile(`\(line (\d+):(\d+)\)`)

// fieldAtError returns the JSON path (such as recipients[0].email) of the
// value a protojson decode error points at, from the body copy r kept, or
// "" when it cannot tell.
func fieldAtError(r *http.Request, msg string) string {
	c, _ := r.Context().Value(bodyCopyKey{}).(*bodyCopy)
	m := decodePosition.FindStringSubmatch(msg)
	if c == nil || m == nil {
		return ""
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	off := 0
	for i := 1; i < line; i++ {
		nl := bytes.IndexByte(c.kept[off:], '\n')
		if nl < 0 {
			return ""
		}
		off += nl + 1
	}
	off += col - 1
	if off <= 0 || off > len(c.kept) {
		return ""
	}
	path := jsonPathAt(c.kept[:off])
	if inner := embeddedPathAt(c.kept[off:]); path != "" && inner != "" {
		path += "." + inner
	}
	return path
}

// embeddedPathAt looks into a JSON string value that holds a JSON document
// (callbackData does) and has bytes that are not UTF-8: it returns the path
// inside the document where the first such byte lies, or "".
func embeddedPathAt(value []byte) string {
	if len(value) < 2 || value[0] != '"' {
		return ""
	}
	end := 1
	for end < len(value) && value[end] != '"' {
		if value[end] == '\\' {
			end++
		}
		end++
	}
	content := value[1:min(end, len(value))]
	bad := 0
	for bad < len(content) && utf8.FullRune(content[bad:]) {
		r, size := utf8.DecodeRune(content[bad:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		bad += size
	}
	if bad >= len(content) {
		return ""
	}
	var inner string
	if json.Unmarshal(append(append([]byte{'"'}, content[:bad]...), '"'), &inner) != nil || !strings.HasPrefix(strings.TrimSpace(inner), "{") {
		return ""
	}
	return jsonPathAt([]byte(inner))
}

// jsonFrame is an open object or array of jsonPathAt's walk.
type jsonFrame struct {
	object    bool
	key       string // the object's current key
	expectKey bool   // the object waits for a key, not a value
	started   int    // how many elements the array has begun
}

// valueStarted records that a value begins in f.
func (f *jsonFrame) valueStarted() {
	if !f.object {
		f.started++
	}
}

// valueDone records that a value of f ended.
func (f *jsonFrame) valueDone() {
	if f.object {
		f.expectKey = true
	}
}

// jsonPathAt walks a JSON prefix and returns the path of the value that
// follows it, such as recipients[0].email.
func jsonPathAt(prefix []byte) string {
	var stack []*jsonFrame
	dec := json.NewDecoder(bytes.NewReader(prefix))
	for {
		tok, err := dec.Token()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				var syn *json.SyntaxError
				if !errors.As(err, &syn) || !strings.Contains(syn.Error(), "unexpected end") {
					return ""
				}
			}
			break
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				stack[len(stack)-1].valueDone()
			}
			continue
		}
		if s, ok := tok.(string); ok && top != nil && top.object && top.expectKey {
			top.key, top.expectKey = s, false
			continue
		}
		if top != nil {
			top.valueStarted()
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &jsonFrame{object: d == '{', expectKey: d == '{'})
			continue
		}
		if top != nil {
			top.valueDone()
		}
	}
	var b strings.Builder
	for i, f := range stack {
		switch {
		case f.object && !f.expectKey:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		case !f.object:
			index := f.started // the next element
			if i < len(stack)-1 {
				index-- // inside the element begun last
			}
			b.WriteString("[" + strconv.Itoa(index) + "]")
		}
	}
	return b.String()
}
