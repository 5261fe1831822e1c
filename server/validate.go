package server

import (
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// resourceIDPattern is the form of connection and sender ids: safe in URLs,
// logs and file names alike.
var resourceIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// infobipHostPattern is the form of Infobip's per-account API hosts.
var infobipHostPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.api\.infobip\.com$`)

func checkResourceID(field, id string) error {
	if !resourceIDPattern.MatchString(id) {
		return invalidField(field, fmt.Sprintf("%q is not an id: use 1 to 63 lower-case letters, digits and dashes, starting and ending with a letter or digit", id))
	}
	return nil
}

// checkText bounds a free-text field and refuses control characters, which
// have no place in names and ids and break logs and headers.
func checkText(field, s string, maxRunes int) error {
	if !utf8.ValidString(s) {
		return invalidField(field, "is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > maxRunes {
		return invalidField(field, fmt.Sprintf("has %d characters; at most %d", n, maxRunes))
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return invalidField(field, "must not contain control characters")
	}
	return nil
}

// BaseURLPolicy decides which Infobip base URLs a connection may have. The
// server calls these URLs with the connection's key, so an open value would
// let a caller point the server at any host (server-side request forgery)
// and leak the key there.
type BaseURLPolicy struct {
	// Allowed are extra origins (scheme://host[:port]) admitted besides
	// https://<account>.api.infobip.com, such as a sandbox.
	Allowed []string
}

// Normalize returns the canonical form of a base URL (its origin), or an
// error that says what is wrong with it.
func (p BaseURLPolicy) Normalize(raw string) (string, error) {
	const field = "base_url"
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", invalidField(field, "is required: the account's base URL, such as https://xxxxx.api.infobip.com")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", invalidField(field, fmt.Sprintf("%q is not a URL such as https://xxxxx.api.infobip.com", raw))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", invalidField(field, "must be an origin only (scheme and host), such as https://xxxxx.api.infobip.com, without path, query or credentials")
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	for _, allowed := range p.Allowed {
		if origin == strings.ToLower(strings.TrimRight(allowed, "/")) {
			return origin, nil
		}
	}
	if u.Scheme != "https" || u.Port() != "" || !infobipHostPattern.MatchString(strings.ToLower(u.Hostname())) {
		return "", invalidField(field, fmt.Sprintf("%q is not an Infobip base URL: it must be https://<account>.api.infobip.com (other origins only when the server is started with --allow-base-url)", origin))
	}
	return origin, nil
}

// checkAPIKey refuses keys that cannot be real, without ever echoing them.
func checkAPIKey(key string) error {
	const field = "api_key"
	switch {
	case key == "":
		return invalidField(field, "is required")
	case len(key) > 512:
		return invalidField(field, "is longer than 512 characters")
	case strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII }) >= 0:
		return invalidField(field, "must be printable ASCII without spaces, as Infobip issues keys")
	}
	return nil
}

// keyHint shows the last four characters of a key, so people can tell keys
// apart without the key being readable.
func keyHint(key string) string {
	if len(key) <= 8 {
		return "****"
	}
	return "…" + key[len(key)-4:]
}

// checkEmail validates a bare address (no display name, a dotted domain)
// and returns it trimmed.
func checkEmail(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalidField(field, "is required")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(a.Address[strings.LastIndexByte(a.Address, '@')+1:], ".") {
		return "", invalidField(field, fmt.Sprintf("%q is not an email address such as ann@example.com", s))
	}
	if len(s) > 254 {
		return "", invalidField(field, "is longer than 254 characters")
	}
	return s, nil
}
