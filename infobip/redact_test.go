package infobip_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/ibmail/ibmail/infobip"
)

// keySpellings are the ways an echoing server may spell key; none may
// survive redaction.
func keySpellings(key string) map[string]string {
	auth := "App " + key
	return map[string]string{
		"exact":               key,
		"upper":               strings.ToUpper(key),
		"mixed case":          mixCase(key),
		"authorization":       auth,
		"authorization UPPER": strings.ToUpper(auth),
		"query-escaped auth":  url.QueryEscape(auth),
		"path-escaped auth":   url.PathEscape(auth),
		"percent every byte":  percentAll(key),
		"percent lower hex":   strings.ToLower(percentAll(key)),
		"json unicode escape": jsonEscapeAll(key),
		"base64 key":          base64.StdEncoding.EncodeToString([]byte(key)),
		"base64url key":       base64.RawURLEncoding.EncodeToString([]byte(key)),
		"base64 auth":         base64.StdEncoding.EncodeToString([]byte(auth)),
		"base64 header line":  base64.StdEncoding.EncodeToString([]byte("Authorization: " + auth)),
		"html escaped":        strings.ReplaceAll(key, "-", "&#45;"),
	}
}

func mixCase(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i%2 == 0 {
			b.WriteRune(unicode.ToUpper(c))
		} else {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func percentAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

func jsonEscapeAll(s string) string {
	var b strings.Builder
	for _, c := range s {
		fmt.Fprintf(&b, `\u%04x`, c)
	}
	return b.String()
}

// leaksKey reports whether s still spells key in any of keySpellings, or
// in a case-insensitive or decoded form.
func leaksKey(s, key string) bool {
	lower := strings.ToLower(s)
	for _, v := range keySpellings(key) {
		if strings.Contains(lower, strings.ToLower(v)) {
			return true
		}
	}
	if u, err := url.QueryUnescape(s); err == nil && strings.Contains(strings.ToLower(u), strings.ToLower(key)) {
		return true
	}
	return false
}

func TestRedactorRedactsEverySpelling(t *testing.T) {
	r := infobip.NewRedactor(testKey)
	for name, spelling := range keySpellings(testKey) {
		t.Run(name, func(t *testing.T) {
			for _, text := range []string{
				spelling,
				"invalid key " + spelling + " given",
				`{"text":"bad ` + spelling + `"}`,
				"xx" + spelling + "yy",
			} {
				got := r.Excerpt(text)
				if leaksKey(got, testKey) || strings.Contains(got, spelling) {
					t.Errorf("Excerpt(%q) = %q, still holds the key", text, got)
				}
			}
		})
	}
}

func TestRedactorKeepsOtherText(t *testing.T) {
	r := infobip.NewRedactor(testKey)
	tests := []struct{ in, want string }{
		{"Invalid login details", "Invalid login details"},
		{"line one\r\nline two\tand\x00 nul", "line one line two and nul"},
		{"bidi \u202egnp.exe", "bidi gnp.exe"},
		{"bad \xff byte", "bad \uFFFD byte"},
	}
	for _, tt := range tests {
		if got := r.Excerpt(tt.in); got != tt.want {
			t.Errorf("Excerpt(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExcerptIsBounded(t *testing.T) {
	r := infobip.NewRedactor(testKey)
	for _, in := range []string{
		strings.Repeat("é", 1000),
		strings.Repeat("a", 1<<20),
		strings.Repeat("x", infobip.MaxUpstreamText-5) + strings.ToUpper(testKey),
		strings.Repeat("\n", 5000) + "tail",
	} {
		got := r.Excerpt(in)
		if len(got) > infobip.MaxUpstreamText || !utf8.ValidString(got) || strings.ContainsFunc(got, unicode.IsControl) {
			t.Errorf("Excerpt of %d bytes = %d bytes %q: not bounded, valid and clean", len(in), len(got), got)
		}
		if leaksKey(got, testKey) || strings.Contains(got, strings.ToUpper(testKey)[:8]) {
			t.Errorf("Excerpt = %q leaks (part of) the key", got)
		}
	}
}

// TestAPIErrorRedactsEchoedKey: an error body echoing the key, in any
// spelling and in any field, leaves no trace of it in the error.
func TestAPIErrorRedactsEchoedKey(t *testing.T) {
	for name, spelling := range keySpellings(testKey) {
		t.Run(name, func(t *testing.T) {
			body := `{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid key ` + spelling +
				`","validationErrors":{"` + spelling + `":["bad ` + spelling + `"]}}}}`
			fake := newFake(t, canned{status: 401, body: body})
			_, err := newClient(t, fake.srv.URL).Domains(context.Background(), 1)
			if err == nil {
				t.Fatal("want an error")
			}
			if got := err.Error(); leaksKey(got, testKey) {
				t.Errorf("error %q holds the key", got)
			}
			fake2 := newFake(t, canned{status: 502, header: http.Header{"Content-Type": {"text/html"}},
				body: "<html>proxy saw Authorization: " + spelling + strings.Repeat(" filler", 200) + "</html>"})
			_, err = newClient(t, fake2.srv.URL).Domains(context.Background(), 1)
			var ae *infobip.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an APIError", err)
			}
			if leaksKey(ae.Text, testKey) || len(ae.Text) > infobip.MaxUpstreamText {
				t.Errorf("Text = %q (%d bytes): holds the key or is unbounded", ae.Text, len(ae.Text))
			}
		})
	}
}

// TestRedirectIsRefused: a 3xx is never followed, whatever client the
// caller passes in, and is reported naming only the target's origin.
func TestRedirectIsRefused(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var reached atomic.Int32
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
				w.WriteHeader(200)
			}))
			defer target.Close()
			fake := newFake(t, canned{status: status, header: http.Header{
				"Location": {target.URL + "/steal/path?token=s3cr3t-query"}}})
			followAll := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
			for _, hc := range []*http.Client{nil, http.DefaultClient, followAll} {
				c := newClient(t, fake.srv.URL, func(cfg *infobip.Config) { cfg.HTTPClient = hc })
				_, err := c.Domains(context.Background(), 1)
				if !infobip.IsRedirect(err) {
					t.Fatalf("err = %v, want a redirect error", err)
				}
				if infobip.IsRetryable(err) || infobip.IsAmbiguous(err) {
					t.Errorf("redirect is retryable %v / ambiguous %v, want neither", infobip.IsRetryable(err), infobip.IsAmbiguous(err))
				}
				u, _ := url.Parse(target.URL)
				var ae *infobip.APIError
				errors.As(err, &ae)
				if want := "http://" + u.Host; ae.RedirectOrigin != want || !strings.Contains(err.Error(), want) {
					t.Errorf("origin %q, error %q; want %q", ae.RedirectOrigin, err, want)
				}
				if msg := err.Error(); strings.Contains(msg, "steal") || strings.Contains(msg, "s3cr3t") {
					t.Errorf("error %q names the target's path or query", msg)
				}
			}
			if followAll.CheckRedirect == nil {
				t.Error("the caller's client was changed")
			}
			if n := reached.Load(); n != 0 {
				t.Errorf("the redirect target got %d requests, want 0", n)
			}
		})
	}
}

// shoutingTransport fails quoting the request's Authorization in upper
// case and URL-encoded, as a careless proxy library might.
type shoutingTransport struct{}

func (shoutingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	auth := r.Header.Get("Authorization")
	return nil, fmt.Errorf("%w: refused %s (%s)", context.DeadlineExceeded, strings.ToUpper(auth), url.QueryEscape(auth))
}

// TestTransportAndRedirectTextIsRedacted: the key spelled in a transport's
// error, or in the host a redirect names, is redacted too.
func TestTransportAndRedirectTextIsRedacted(t *testing.T) {
	c := newClient(t, "https://xyz.api.infobip.com", func(cfg *infobip.Config) {
		cfg.HTTPClient = &http.Client{Transport: shoutingTransport{}}
	})
	_, err := c.Domains(context.Background(), 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v lost its identity", err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		if s := fmt.Sprintf(verb, err); leaksKey(s, testKey) {
			t.Errorf("error printed with %s holds the key: %s", verb, s)
		}
	}

	fake := newFake(t, canned{status: 302, header: http.Header{"Location": {"http://" + strings.ToUpper(testKey) + ".example.com:8080/x"}}})
	_, err = newClient(t, fake.srv.URL).Domains(context.Background(), 1)
	var ae *infobip.APIError
	if !errors.As(err, &ae) || leaksKey(err.Error(), testKey) || leaksKey(ae.RedirectOrigin, testKey) {
		t.Errorf("redirect error %v (origin %q) holds the key", err, ae.RedirectOrigin)
	}
}
