package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/infobip"
	"github.com/ibmail/ibmail/infobip/spec"
	"github.com/ibmail/ibmail/sandbox"
)

const key = "sandbox-test-key"

// toReceiver as Options.NotifyURL stands for the env's receiver.
const toReceiver = "test:receiver"

// env is a sandbox behind a real HTTP server, a report receiver and a client.
type env struct {
	sb     *sandbox.Sandbox
	srv    *httptest.Server
	rcv    *receiver
	client *infobip.Client
}

func newEnv(t *testing.T, opts sandbox.Options) *env {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = key
	}
	if opts.ReportRetryBase == 0 {
		opts.ReportRetryBase = time.Millisecond
	}
	e := &env{rcv: newReceiver(t)}
	if opts.NotifyURL == toReceiver {
		opts.NotifyURL = e.rcv.srv.URL
	}
	e.sb = sandbox.New(opts)
	e.srv = httptest.NewServer(e.sb)
	t.Cleanup(func() {
		e.srv.Close()
		_ = e.sb.Close()
	})
	e.client = newClient(t, e.srv.URL, key)
	return e
}

// newClient returns an infobip client whose every request and answer is
// checked against Infobip's OpenAPI description.
func newClient(t *testing.T, base, apiKey string) *infobip.Client {
	t.Helper()
	c, err := infobip.New(infobip.Config{
		BaseURL: base, APIKey: apiKey,
		HTTPClient: &http.Client{Transport: &specTransport{t: t, next: http.DefaultTransport}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// specTransport validates the traffic it carries. A 429 of the send
// operation is let through: Infobip throttles it, its description does not
// say so.
type specTransport struct {
	t    *testing.T
	next http.RoundTripper
}

func (s *specTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	v := spec.MustLoad()
	check := r.Clone(r.Context())
	if r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		check.Body = io.NopCloser(bytes.NewReader(body))
	}
	if err := v.ValidateRequest(check); err != nil {
		s.t.Errorf("client request: %v", err)
	}
	resp, err := s.next.RoundTrip(r)
	if err != nil || resp.StatusCode == http.StatusTooManyRequests && r.URL.Path == "/email/3/send" {
		return resp, err
	}
	if err := v.ValidateResponse(check, resp); err != nil {
		s.t.Errorf("sandbox answer: %v", err)
	}
	return resp, nil
}

// post is one delivery-report POST as received.
type post struct {
	query   url.Values
	user    string
	pass    string
	reports []infobip.DeliveryReport
}

// receiver stands for ibmail's webhook: it checks every body against the
// webhook schema, answers the queued statuses first, then 200.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	posts   []post
	answers []int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Error(err)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		rc.t.Errorf("report Content-Type = %q, want application/json", ct)
	}
	if err := spec.MustLoad().ValidateDeliveryReports(body); err != nil {
		rc.t.Errorf("report body: %v", err)
	}
	var reps infobip.DeliveryReports
	if err := json.Unmarshal(body, &reps); err != nil {
		rc.t.Errorf("report body: %v", err)
	}
	user, pass, _ := r.BasicAuth()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	status := http.StatusOK
	if len(rc.answers) > 0 {
		status, rc.answers = rc.answers[0], rc.answers[1:]
	}
	if status == http.StatusOK {
		rc.posts = append(rc.posts, post{query: r.URL.Query(), user: user, pass: pass, reports: reps.Results})
	}
	w.WriteHeader(status)
}

func (rc *receiver) answerFirst(statuses ...int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answers = append(rc.answers, statuses...)
}

func (rc *receiver) received() []post {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]post(nil), rc.posts...)
}

func (rc *receiver) reports() []infobip.DeliveryReport {
	var all []infobip.DeliveryReport
	for _, p := range rc.received() {
		all = append(all, p.reports...)
	}
	return all
}

// idle waits for every queued report to be posted.
func (e *env) idle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.sb.WaitIdle(ctx); err != nil {
		t.Fatalf("reports still pending: %v (stats %+v)", err, e.sb.Stats())
	}
}

func (e *env) send(t *testing.T, req infobip.SendRequest) *infobip.SendResponse {
	t.Helper()
	if req.From == "" && req.TemplateID == 0 {
		req.From = "Shop <news@example.com>"
	}
	if req.Subject == "" && req.TemplateID == 0 {
		req.Subject = "Hello"
	}
	if req.NotifyURL == "" {
		req.NotifyURL = e.rcv.srv.URL + "/dlr"
	}
	resp, err := e.client.Send(context.Background(), req)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return resp
}

func recipients(addrs ...string) []infobip.Recipient {
	out := make([]infobip.Recipient, len(addrs))
	for i, a := range addrs {
		out[i] = infobip.Recipient{Email: a}
	}
	return out
}

type field struct{ name, value string }

// rawSend posts a form the client would refuse to build.
func rawSend(t *testing.T, base, apiKey string, fields ...field) (*http.Response, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f.name, f.value); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/email/3/send", &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if apiKey != "" {
		req.Header.Set("Authorization", "App "+apiKey)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
