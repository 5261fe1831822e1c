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

// checkText bounds a free-text field and refuses control characters (CR
// and LF among them) and line separators, which have no place in names,
// ids and header values: in a mail header or an HTTP header to Infobip a
// line break starts a header of the caller's choosing, and in a log line it
// forges another line.
func checkText(field, s string, maxRunes int) error {
	if !utf8.ValidString(s) {
		return invalidField(field, "is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > maxRunes {
		return invalidField(field, fmt.Sprintf("has %d characters; at most %d", n, maxRunes))
	}
	if strings.ContainsAny(s, "\r\n") {
		return invalidField(field, "must not contain line breaks (CR or LF)")
	}
	if strings.IndexFunc(s, isControlOrLineBreak) >= 0 {
		return invalidField(field, "must not contain control characters or line separators")
	}
	return nil
}

// isControlOrLineBreak is a control character (C0, DEL, C1: CR, LF, NEL,
// TAB, NUL...) or a Unicode line or paragraph separator.
func isControlOrLineBreak(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// isBidiControl is a character that reorders the text around it (U+202A to
// U+202E, U+2066 to U+2069, the marks U+061C, U+200E and U+200F): in an id
// it makes one id look like another in every log and console that shows it.
func isBidiControl(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }

// maxProfileIDChars bounds a profile id: the bound sends have always
// applied, now applied wherever a profile id enters.
const maxProfileIDChars = 200

// checkProfileID is the one rule for a profile id, wherever it enters
// (a send's recipient, a report's callbackData or address, a query), and
// returns it without surrounding spaces: valid UTF-8, 1 to 200 characters,
// no control characters or line separators, no bidi controls, and usable
// as one segment of a URL path (/v1/profiles/{profile_id}/events, with any
// '/' escaped as %2F): no empty, "." or ".." segment between slashes, which
// HTTP clients and servers remove or collapse before routing. The value is
// never echoed: it may be megabytes long or meant to forge a log line.
func checkProfileID(field, raw string) (string, error) {
	return checkProfileIDUpTo(field, raw, maxProfileIDChars)
}

// checkProfileIDUpTo is checkProfileID with another length bound, for the
// one id that is not chosen as a profile id: a report's recipient address,
// which stands for the profile when callbackData names none and may have
// up to 254 characters.
func checkProfileIDUpTo(field, raw string, maxChars int) (string, error) {
	if !utf8.ValidString(raw) {
		return "", invalidField(field, "is not valid UTF-8")
	}
	id := strings.TrimSpace(raw)
	switch {
	case id == "":
		return "", invalidField(field, "is required")
	case utf8.RuneCountInString(id) > maxChars:
		return "", invalidField(field, fmt.Sprintf("has %d characters; a profile id has at most %d", utf8.RuneCountInString(id), maxChars))
	case strings.IndexFunc(id, isControlOrLineBreak) >= 0:
		return "", invalidField(field, "must not contain control characters (such as CR, LF, TAB or NUL) or line separators")
	case strings.IndexFunc(id, isBidiControl) >= 0:
		return "", invalidField(field, "must not contain bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+061C, U+200E, U+200F)")
	}
	for _, seg := range strings.Split(id, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", invalidField(field, `must not start or end with '/', hold "//", or have "." or ".." between slashes: it could not be read back over REST`)
		}
	}
	return id, nil
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
	if len(s) > 254 {
		return "", invalidField(field, "is longer than 254 characters")
	}
	// An address reaches mail headers (From, Reply-To, To): a line break
	// in one would add headers, whatever the parser below makes of it.
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return isControlOrLineBreak(r) || isBidiControl(r) }) >= 0 {
		return "", invalidField(field, "must be UTF-8 without control characters (such as CR or LF), line separators or bidirectional controls")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(a.Address[strings.LastIndexByte(a.Address, '@')+1:], ".") {
		return "", invalidField(field, fmt.Sprintf("%q is not an email address such as ann@example.com", s))
	}
	return s, nil
}
