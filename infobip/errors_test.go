package infobip_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/infobip"
)

func TestAPIErrors(t *testing.T) {
	type want struct {
		err                                  infobip.APIError
		retryable, ambiguous, unauth, forbid bool
	}
	tests := []struct {
		name string
		ans  canned
		want want
	}{
		{"400 with validation errors", canned{status: 400, body: `{"requestError":{"serviceException":{"messageId":"BAD_REQUEST","text":"Bad request",
			"validationErrors":{"to":["must not be empty"],"subject":["too long"]}}}}`},
			want{err: infobip.APIError{StatusCode: 400, MessageID: "BAD_REQUEST", Text: "Bad request",
				ValidationErrors: map[string][]string{"to": {"must not be empty"}, "subject": {"too long"}}}}},
		{"401", canned{status: 401, body: `{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}`},
			want{err: infobip.APIError{StatusCode: 401, MessageID: "UNAUTHORIZED", Text: "Invalid login details"}, unauth: true}},
		{"403", canned{status: 403, body: `{"requestError":{"serviceException":{"messageId":"FORBIDDEN","text":"Forbidden"}}}`},
			want{err: infobip.APIError{StatusCode: 403, MessageID: "FORBIDDEN", Text: "Forbidden"}, forbid: true}},
		{"429 older body", canned{status: 429, body: `{"requestError":{"serviceException":{"messageId":"TOO_MANY_REQUESTS","text":"Too many requests"}}}`},
			want{err: infobip.APIError{StatusCode: 429, MessageID: "TOO_MANY_REQUESTS", Text: "Too many requests"}, retryable: true}},
		{"429 newer body with Retry-After seconds", canned{status: 429, header: http.Header{"Retry-After": {"7"}},
			body: `{"errorCode":"E429","description":"Too many requests sent.","action":"Check request rate limit.","violations":[],"resources":[]}`},
			want{err: infobip.APIError{StatusCode: 429, MessageID: "E429", Text: "Too many requests sent.", Action: "Check request rate limit.",
				Violations: []infobip.Violation{}, RetryAfter: 7 * time.Second}, retryable: true}},
		{"400 newer body with violations", canned{status: 400,
			body: `{"errorCode":"E400","description":"Request cannot be processed.","violations":[{"property":"to","violation":"invalid"}],"resources":[]}`},
			want{err: infobip.APIError{StatusCode: 400, MessageID: "E400", Text: "Request cannot be processed.",
				Violations: []infobip.Violation{{Property: "to", Violation: "invalid"}}}}},
		{"500", canned{status: 500, body: `{"requestError":{"serviceException":{"messageId":"GENERAL_ERROR","text":"Something went wrong. Please contact support."}}}`},
			want{err: infobip.APIError{StatusCode: 500, MessageID: "GENERAL_ERROR", Text: "Something went wrong. Please contact support."}, retryable: true}},
		{"502 from a proxy", canned{status: 502, header: http.Header{"Content-Type": {"text/html"}}, body: "<html>\n<h1>502 Bad Gateway</h1></html>"},
			want{err: infobip.APIError{StatusCode: 502, Text: "<html> <h1>502 Bad Gateway</h1></html>"}, retryable: true, ambiguous: true}},
		{"503", canned{status: 503, body: ``}, want{err: infobip.APIError{StatusCode: 503}, retryable: true}},
		{"504", canned{status: 504, body: `upstream timed out`},
			want{err: infobip.APIError{StatusCode: 504, Text: "upstream timed out"}, retryable: true, ambiguous: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, tt.ans)
			c := newClient(t, fake.srv.URL)
			_, err := c.Domains(context.Background(), 1)
			var got *infobip.APIError
			if !errors.As(err, &got) {
				t.Fatalf("Domains: %v (%T), want an *APIError", err, err)
			}
			if !reflect.DeepEqual(*got, tt.want.err) {
				t.Errorf("APIError = %#v\nwant %#v", *got, tt.want.err)
			}
			checks := []struct {
				name string
				got  bool
				want bool
			}{
				{"IsRetryable", infobip.IsRetryable(err), tt.want.retryable},
				{"IsAmbiguous", infobip.IsAmbiguous(err), tt.want.ambiguous},
				{"IsUnauthorized", infobip.IsUnauthorized(err), tt.want.unauth},
				{"IsForbidden", infobip.IsForbidden(err), tt.want.forbid},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	at := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	fake := newFake(t, canned{status: 429, header: http.Header{"Retry-After": {at}}, body: `{}`})
	_, err := newClient(t, fake.srv.URL).Domains(context.Background(), 1)
	d, ok := infobip.RetryAfter(err)
	if !ok || d <= 0 || d > 90*time.Second {
		t.Errorf("RetryAfter = %v, %v; want a positive wait of at most 90s", d, ok)
	}
}

// server answers with handler, and closes on test cleanup.
func server(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv
}

// hangUp reads the whole request, then drops the connection without an
// answer: Infobip may have acted on it.
func hangUp(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_ = conn.Close()
	}
}

func sendOne(c *infobip.Client, ctx context.Context) error {
	_, err := c.Send(ctx, infobip.SendRequest{From: "a@example.com", To: []infobip.Recipient{{Email: "b@example.com"}}, Subject: "s", BulkID: "bulk-x"})
	return err
}

func TestTransportErrors(t *testing.T) {
	refused := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		return "http://" + addr
	}()
	truncated := server(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"bulkId":"b`)
	})
	garbled := server(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"messages":"no"}`) })

	tests := []struct {
		name                 string
		base                 string
		retryable, ambiguous bool
	}{
		{"connection refused", refused, true, false},
		{"connection dropped after the request", server(t, hangUp(t)).URL, true, true},
		{"200 cut short", truncated.URL, true, true},
		{"200 not decodable", garbled.URL, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sendOne(newClient(t, tt.base), context.Background())
			var re *infobip.RequestError
			if !errors.As(err, &re) {
				t.Fatalf("Send: %v (%T), want a *RequestError", err, err)
			}
			if re.BulkID != "bulk-x" || re.Op != "POST /email/3/send" {
				t.Errorf("BulkID, Op = %q, %q", re.BulkID, re.Op)
			}
			if got := infobip.IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v (%v)", got, tt.retryable, err)
			}
			if got := infobip.IsAmbiguous(err); got != tt.ambiguous {
				t.Errorf("IsAmbiguous = %v, want %v (%v)", got, tt.ambiguous, err)
			}
		})
	}
}

// A caller that gives up after the request went out cannot know whether the
// email was accepted; one that gives up earlier can.
func TestContextEnds(t *testing.T) {
	gotBody := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select {
		case gotBody <- struct{}{}:
		case <-r.Context().Done():
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c := newClient(t, srv.URL)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- sendOne(c, ctx) }()
	<-gotBody
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) || !infobip.IsAmbiguous(err) || infobip.IsRetryable(err) {
		t.Errorf("cancelled after writing: %v; want context.Canceled, ambiguous, not retryable", err)
	}

	dl := newManualDeadline()
	go func() { errc <- sendOne(c, dl) }()
	<-gotBody
	dl.expire()
	err = <-errc
	if !errors.Is(err, context.DeadlineExceeded) || !infobip.IsAmbiguous(err) || !infobip.IsRetryable(err) {
		t.Errorf("deadline after writing: %v; want DeadlineExceeded, ambiguous, retryable", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	err = sendOne(c, ctx)
	if infobip.IsAmbiguous(err) || infobip.IsRetryable(err) {
		t.Errorf("cancelled before sending: %v; want neither ambiguous nor retryable", err)
	}
}

// manualDeadline is a context whose deadline passes when the test says so,
// so that a timeout can be placed after the request went out without
// waiting on a clock.
type manualDeadline struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newManualDeadline() *manualDeadline {
	return &manualDeadline{Context: context.Background(), done: make(chan struct{})}
}

func (d *manualDeadline) expire()               { d.once.Do(func() { close(d.done) }) }
func (d *manualDeadline) Done() <-chan struct{} { return d.done }
func (d *manualDeadline) Err() error {
	select {
	case <-d.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}
