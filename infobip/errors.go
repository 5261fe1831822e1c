package infobip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// APIError is an answer from Infobip (or from a proxy in front of it) with a
// status other than 2xx. Both of Infobip's error bodies are decoded:
// {"requestError":{"serviceException":{"messageId","text","validationErrors"}}}
// and the newer {"errorCode","description","action","violations"}.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// MessageID is Infobip's error id: serviceException.messageId
	// (UNAUTHORIZED, FORBIDDEN, BAD_REQUEST, TOO_MANY_REQUESTS...) or the
	// newer body's errorCode (E429...). Empty when the body was not Infobip's.
	MessageID string
	// Text is serviceException.text or description, or a short excerpt of a
	// foreign body.
	Text string
	// ValidationErrors maps request fields to what was wrong with them.
	ValidationErrors map[string][]string
	// Violations are the newer body's per-property problems.
	Violations []Violation
	// Action is the newer body's advice.
	Action string
	// RetryAfter is the Retry-After header as a duration from the answer's
	// arrival; zero when absent or unparsable.
	RetryAfter time.Duration
	// RedirectOrigin is set for a 3xx: the origin (scheme://host:port, never
	// a path or query, which may carry secrets) the Location pointed at, or
	// empty when it had none usable. The client follows no redirect.
	RedirectOrigin string
}

// Violation is one entry of the newer error body's "violations".
type Violation struct {
	Property  string `json:"property"`
	Violation string `json:"violation"`
}

// Error reads like "infobip: HTTP 429 TOO_MANY_REQUESTS: Too many requests (retry after 2s)".
func (e *APIError) Error() string {
	if IsRedirect(e) {
		return fmt.Sprintf("infobip: HTTP %d: %s", e.StatusCode, e.Text)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "infobip: HTTP %d", e.StatusCode)
	if e.MessageID != "" {
		b.WriteString(" " + e.MessageID)
	}
	if e.Text != "" {
		b.WriteString(": " + e.Text)
	}
	fields := make([]string, 0, len(e.ValidationErrors))
	for f := range e.ValidationErrors {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		fmt.Fprintf(&b, "; %s: %s", f, strings.Join(e.ValidationErrors[f], ", "))
	}
	for _, v := range e.Violations {
		fmt.Fprintf(&b, "; %s: %s", v.Property, v.Violation)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return boundErrorText(b.String())
}

// RequestError is a request that got no decodable answer: it could not be
// sent, the connection failed or timed out, or a 2xx body could not be read.
// Written says whether the whole request had reached the connection, which is
// what decides whether Infobip may have acted on it.
type RequestError struct {
	// Op is the call, e.g. "POST /email/3/send".
	Op string
	// Written is true once the request, body included, was written out.
	Written bool
	// StatusCode is the status of an answer whose body failed; 0 if none.
	StatusCode int
	// BulkID is the bulkId a failed send carried, to look up in Logs.
	BulkID    string
	msg       string
	cause     error
	permanent bool
}

// Error names the call and the cause, with the API key redacted.
func (e *RequestError) Error() string { return "infobip: " + e.Op + ": " + e.msg }

// Unwrap gives the underlying error, so errors.Is(err, context.DeadlineExceeded)
// and friends work.
func (e *RequestError) Unwrap() error { return e.cause }

// FieldError is a request the client refused to send because a field breaks
// one of Infobip's documented rules.
type FieldError struct {
	// Field is Infobip's name of the form field or query parameter.
	Field string
	// Problem says what is wrong with it.
	Problem string
}

// Error names the field, in Infobip's spelling.
func (e *FieldError) Error() string { return "infobip: invalid " + e.Field + ": " + e.Problem }

// IsRetryable reports whether trying the same call again later may succeed:
// 429, any 5xx, and failures to reach Infobip or to hear its answer. It does
// not say whether a retry is safe: check IsAmbiguous first, because a retry
// of an ambiguous send can deliver the email twice. A call cancelled by its
// own context, a refused request (4xx other than 429) and a certificate
// failure are not retryable.
func IsRetryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode >= 500
	}
	var re *RequestError
	if errors.As(err, &re) {
		return !re.permanent && !errors.Is(re, context.Canceled)
	}
	return false
}

// IsAmbiguous reports whether Infobip may have accepted the request although
// the caller saw an error, so that the outcome must be resolved (for a send:
// GET /email/1/logs by its bulkId) before sending again. That is the case
// when the whole request was written and then the answer was lost: a
// timeout, a reset or closed connection, a cancelled context, or a 2xx
// whose body could not be read. It is also the case for 502 and 504, which
// come from a gateway that may have passed the request on before its
// upstream failed or timed out. It is not the case when the request never
// left (connection refused, DNS failure, TLS failure), nor for any answer in
// Infobip's own error body, such as 500 GENERAL_ERROR, 503 or 429, where
// Infobip says it did not take the request.
func IsAmbiguous(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode == http.StatusBadGateway || ae.StatusCode == http.StatusGatewayTimeout
	}
	var re *RequestError
	if errors.As(err, &re) {
		return re.Written
	}
	return false
}

// maxErrorText bounds Error(): each upstream field is already bounded, but a
// body may carry many of them.
const maxErrorText = 4 * MaxUpstreamText

func boundErrorText(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// IsRedirect reports a 3xx answer. Infobip's API never redirects, so the
// base URL points at something else (a proxy, a moved host): a
// configuration problem that no retry fixes. Nothing was sent on, because
// the client follows no redirect.
func IsRedirect(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode >= 300 && ae.StatusCode <= 399
}

// redirectError describes a 3xx answer to a request for u, naming only the
// origin of its Location.
func redirectError(resp *http.Response, u *url.URL) *APIError {
	e := &APIError{StatusCode: resp.StatusCode}
	if loc := resp.Header.Get("Location"); loc != "" {
		if target, err := u.Parse(loc); err == nil && target.Host != "" && (target.Scheme == "http" || target.Scheme == "https") {
			e.RedirectOrigin = origin(target)
		}
	}
	if e.RedirectOrigin != "" {
		e.Text = "Infobip does not redirect; the base URL answered a redirect to " + e.RedirectOrigin +
			" (not followed; check the connection's base URL)"
	} else {
		e.Text = "Infobip does not redirect; the base URL answered a redirect without a usable Location (not followed; check the connection's base URL)"
	}
	return e
}

// origin is scheme://host:port of u, the port spelled out even when it is
// the scheme's default, and nothing of its user info, path or query.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port)
}

// IsUnauthorized reports a 401: the API key is wrong or revoked.
func IsUnauthorized(err error) bool { return statusIs(err, http.StatusUnauthorized) }

// IsForbidden reports a 403: the key lacks a scope the endpoint needs
// (sending needs email:message:send, message:send or email:manage).
func IsForbidden(err error) bool { return statusIs(err, http.StatusForbidden) }

// RetryAfter returns how long Infobip asked to wait, when it did.
func RetryAfter(err error) (time.Duration, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter, true
	}
	return 0, false
}

func statusIs(err error, code int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == code
}

type errorBody struct {
	RequestError *struct {
		ServiceException *exceptionBody `json:"serviceException"`
		PolicyException  *exceptionBody `json:"policyException"`
	} `json:"requestError"`
	ErrorCode   string          `json:"errorCode"`
	Description string          `json:"description"`
	Action      string          `json:"action"`
	Violations  json.RawMessage `json:"violations"`
}

type exceptionBody struct {
	MessageID        string          `json:"messageId"`
	Text             string          `json:"text"`
	ValidationErrors json.RawMessage `json:"validationErrors"`
}

// decodeAPIError turns any non-2xx answer into an *APIError; it never fails,
// because a body that is not Infobip's (a proxy's page) is still an answer.
func decodeAPIError(status int, header http.Header, body []byte, now time.Time) *APIError {
	e := &APIError{StatusCode: status, RetryAfter: parseRetryAfter(header.Get("Retry-After"), now)}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		if eb.RequestError != nil {
			ex := eb.RequestError.ServiceException
			if ex == nil {
				ex = eb.RequestError.PolicyException
			}
			if ex != nil {
				e.MessageID, e.Text = ex.MessageID, ex.Text
				e.ValidationErrors = decodeValidationErrors(ex.ValidationErrors)
			}
		}
		if e.MessageID == "" && e.Text == "" && (eb.ErrorCode != "" || eb.Description != "") {
			e.MessageID, e.Text, e.Action = eb.ErrorCode, eb.Description, eb.Action
			_ = json.Unmarshal(eb.Violations, &e.Violations)
		}
	}
	if e.MessageID == "" && e.Text == "" {
		// Bounded and redacted by the client (redactAPIError), which holds
		// the key: cutting here first could leave a key half-spelled.
		e.Text = string(body)
	}
	return e
}

// decodeValidationErrors accepts {"field":["a","b"]} and {"field":"a"}.
func decodeValidationErrors(raw json.RawMessage) map[string][]string {
	if len(raw) == 0 {
		return nil
	}
	var many map[string][]string
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
		return many
	}
	var one map[string]string
	if json.Unmarshal(raw, &one) == nil && len(one) > 0 {
		many = make(map[string][]string, len(one))
		for k, v := range one {
			many[k] = []string{v}
		}
		return many
	}
	return nil
}

// maxRetryAfter caps a Retry-After, so that a garbled header cannot park a
// caller for years.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads delay-seconds or an HTTP date. Infobip documents no
// Retry-After, but proxies and the sandbox send one.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// isPermanentTransportError spots failures that no retry can fix: the
// certificate is not trusted, or the URL cannot be used at all.
func isPermanentTransportError(err error) bool {
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var he x509.HostnameError
	var cie x509.CertificateInvalidError
	return errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cie) ||
		strings.Contains(err.Error(), "unsupported protocol scheme")
}
