package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// Hostile is how the sandbox misbehaves as an Infobip stand-in that a
// client must not trust: deterministic, on every Infobip API request (paths
// under /email/), before the key is checked, so that a test gets exactly the
// answer it asked for however fast the machine is.
type Hostile struct {
	// RedirectTo, when set, answers every request 307 Temporary Redirect with
	// this Location, as a hijacked or misconfigured base URL would, to see
	// whether the client follows it with the API key.
	RedirectTo string
	// EchoKey answers every request 400 with an Infobip error body that
	// echoes the request's API key in upper case, URL-encoded and in base64,
	// in its text and in its validation errors, to see whether the client
	// keeps the key out of stored reasons and logs.
	EchoKey bool
}

// SetHostile replaces the misbehaviour in force; the zero Hostile ends it.
func (s *Sandbox) SetHostile(h Hostile) { s.hostile.Store(&h) }

// serveHostile answers r as the Hostile in force says and reports whether
// it did.
func (s *Sandbox) serveHostile(w http.ResponseWriter, r *http.Request) bool {
	h := s.hostile.Load()
	if h == nil || !strings.HasPrefix(r.URL.Path, "/email/") {
		return false
	}
	switch {
	case h.RedirectTo != "":
		s.stats.requests.Add(1)
		http.Redirect(w, r, h.RedirectTo, http.StatusTemporaryRedirect)
		return true
	case h.EchoKey:
		s.stats.requests.Add(1)
		auth := r.Header.Get("Authorization")
		key := strings.TrimSpace(strings.TrimPrefix(auth, "App "))
		echo := strings.ToUpper(key)
		text := "Invalid login details for key " + echo + " (sent as " + url.QueryEscape(auth) +
			", " + base64.StdEncoding.EncodeToString([]byte(auth)) + ")"
		body, _ := json.Marshal(map[string]any{"requestError": map[string]any{"serviceException": map[string]any{
			"messageId": "BAD_REQUEST", "text": text,
			"validationErrors": map[string][]string{"apiKey": {"unknown key " + echo}},
		}}})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(body)
		return true
	}
	return false
}
