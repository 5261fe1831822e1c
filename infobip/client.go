// Package infobip is a client for the parts of Infobip's Email API that
// ibmail uses: sending (POST /email/3/send), checking a key and its domains
// (GET /email/1/domains) and reading message logs (GET /email/1/logs) to
// settle a send whose answer was lost. It also carries the types of
// Infobip's delivery-report webhook.
//
// The client never retries on its own: whether a failed send may be sent
// again depends on IsAmbiguous and IsRetryable, and only the caller knows
// how to settle an ambiguous one. It never calls GET /email/1/reports,
// because reading reports there consumes them.
//
// The API key is a secret: it appears only in the Authorization header, never
// in an error, a log line or the client's printed form.
package infobip

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// MaxIDLength is the longest Application ID or Entity ID Infobip accepts.
const MaxIDLength = 255

// maxBodyBytes bounds what the client reads of an answer; a log page of
// 1000 entries is well under it.
const maxBodyBytes = 16 << 20

// Config is what a Client needs.
type Config struct {
	// BaseURL is the account's API base, e.g. https://xxxxx.api.infobip.com.
	BaseURL string
	// APIKey is sent as "Authorization: App <key>".
	APIKey string
	// ApplicationID and EntityID, when set, go with every send unless the
	// SendRequest names its own (CPaaS X application and entity management).
	ApplicationID string
	EntityID      string
	// HTTPClient carries the requests; nil means a client with a 30 s
	// timeout, so that a hung connection cannot block a caller forever.
	HTTPClient *http.Client
	// UserAgent is sent as User-Agent; empty means "ibmail-infobip".
	UserAgent string
}

// Client calls Infobip's Email API. It is safe for concurrent use.
type Client struct {
	base          *url.URL
	apiKey        string
	applicationID string
	entityID      string
	hc            *http.Client
	redactor      Redactor
	userAgent     string
	now           func() time.Time
}

// New checks cfg and builds a Client.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, &FieldError{Field: "BaseURL", Problem: "want an absolute http or https URL such as https://xxxxx.api.infobip.com"}
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, &FieldError{Field: "BaseURL", Problem: "must not carry a query or fragment"}
	}
	if cfg.APIKey == "" {
		return nil, &FieldError{Field: "APIKey", Problem: "is empty"}
	}
	if strings.ContainsFunc(cfg.APIKey, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		// The key cannot be quoted here: the message would leak it.
		return nil, &FieldError{Field: "APIKey", Problem: "contains spaces or control characters"}
	}
	for field, v := range map[string]string{"ApplicationID": cfg.ApplicationID, "EntityID": cfg.EntityID} {
		if len([]rune(v)) > MaxIDLength {
			return nil, &FieldError{Field: field, Problem: fmt.Sprintf("longer than %d characters", MaxIDLength)}
		}
	}
	// A copy of the caller's client (its transport, timeout and jar kept)
	// that follows no redirect: Infobip's API never redirects, and
	// following one would hand the Authorization header, and the request
	// body, to whoever the Location names.
	hc := &http.Client{Timeout: 30 * time.Second}
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		hc = &copied
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ua := cfg.UserAgent
	if ua == "" {
		ua = "ibmail-infobip"
	}
	return &Client{
		base: base, apiKey: cfg.APIKey, applicationID: cfg.ApplicationID, entityID: cfg.EntityID,
		hc: hc, redactor: NewRedactor(cfg.APIKey), userAgent: ua, now: time.Now,
	}, nil
}

// String describes the client without its key.
func (c Client) String() string {
	base := ""
	if c.base != nil {
		base = c.base.Redacted()
	}
	return fmt.Sprintf("infobip.Client{BaseURL: %s, APIKey: [redacted], ApplicationID: %q, EntityID: %q}",
		base, c.applicationID, c.entityID)
}

// Format prints String for every verb, %#v and %d included, because fmt
// would otherwise print the unexported key field for some of them.
func (c Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// call is one request to Infobip.
type call struct {
	method      string
	path        string
	query       url.Values
	body        []byte
	contentType string
}

func (cl call) op() string { return cl.method + " " + cl.path }

// do sends cl and decodes a 2xx JSON answer into out. A non-2xx answer
// becomes an *APIError, anything else a *RequestError.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	u := c.base.JoinPath(cl.path)
	u.RawQuery = cl.query.Encode()
	var body io.Reader = http.NoBody
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	// written is set once the transport has put the whole request on the
	// connection: from then on Infobip may act on it, whatever happens.
	var written atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			written.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), cl.method, u.String(), body)
	if err != nil {
		return c.requestError(cl, false, 0, err)
	}
	req.Header.Set("Authorization", "App "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if cl.contentType != "" {
		req.Header.Set("Content-Type", cl.contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.requestError(cl, written.Load(), 0, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		// An answer had started, so the request was taken in.
		return c.requestError(cl, true, resp.StatusCode, fmt.Errorf("read answer: %w", err))
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return c.redactAPIError(redirectError(resp, u))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.redactAPIError(decodeAPIError(resp.StatusCode, resp.Header, data, c.now()))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return c.requestError(cl, true, resp.StatusCode, fmt.Errorf("decode %d answer: %w", resp.StatusCode, err))
	}
	return nil
}

// Excerpt is s, text that came from Infobip (a status description, say),
// made fit for a stored reason, a log line or an API answer: the client's
// key redacted in any spelling, sanitised and bounded (see Redactor.Excerpt).
func (c *Client) Excerpt(s string) string { return c.redactor.Excerpt(s) }

func (c *Client) redact(s string) string { return c.redactor.Excerpt(s) }

func (c *Client) requestError(cl call, written bool, status int, err error) *RequestError {
	re := &RequestError{
		Op: cl.op(), Written: written, StatusCode: status,
		msg: c.redact(err.Error()), cause: err, permanent: isPermanentTransportError(err),
	}
	if raw := sanitizeText(err.Error()); c.redactor.Redact(raw) != raw {
		// A transport that quoted the request put the key in its error;
		// keep errors.Is working without handing that text out.
		re.cause = &scrubbedError{msg: re.msg, orig: err}
	}
	return re
}

// maxUpstreamEntries bounds the validation errors and violations kept of
// one error body, so that Error() stays short whatever the body held.
const maxUpstreamEntries = 8

// redactAPIError keeps only redacted, sanitised and bounded excerpts of
// what the error body said: every field of it reaches stored reasons, log
// lines and API answers.
func (c *Client) redactAPIError(e *APIError) *APIError {
	e.MessageID, e.Text, e.Action = c.redact(e.MessageID), c.redact(e.Text), c.redact(e.Action)
	e.RedirectOrigin = c.redact(e.RedirectOrigin)
	if len(e.ValidationErrors) > 0 {
		fields := make([]string, 0, len(e.ValidationErrors))
		for f := range e.ValidationErrors {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		kept := make(map[string][]string, min(len(fields), maxUpstreamEntries))
		for _, f := range fields[:min(len(fields), maxUpstreamEntries)] {
			vs := e.ValidationErrors[f]
			out := make([]string, 0, min(len(vs), maxUpstreamEntries))
			for _, v := range vs[:min(len(vs), maxUpstreamEntries)] {
				out = append(out, c.redact(v))
			}
			kept[c.redact(f)] = out
		}
		e.ValidationErrors = kept
	}
	if len(e.Violations) > maxUpstreamEntries {
		e.Violations = e.Violations[:maxUpstreamEntries]
	}
	for i := range e.Violations {
		e.Violations[i].Property = c.redact(e.Violations[i].Property)
		e.Violations[i].Violation = c.redact(e.Violations[i].Violation)
	}
	return e
}

// scrubbedError stands in for an error whose text held the key: same Is
// answers, redacted text, no way back to the original.
type scrubbedError struct {
	msg  string
	orig error
}

func (e *scrubbedError) Error() string        { return e.msg }
func (e *scrubbedError) Is(target error) bool { return errors.Is(e.orig, target) }
