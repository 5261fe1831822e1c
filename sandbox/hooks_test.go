package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ibmail/ibmail/infobip"
	"github.com/ibmail/ibmail/infobip/spec"
	"github.com/ibmail/ibmail/sandbox"
)

// The paths of the hooks server, one per Infobip webhook.
const (
	dlrPath      = "/dlr"
	trackPath    = "/track"
	platformPath = "/platform"
)

// hookPost is one POST the hooks server answered 200, in arrival order.
type hookPost struct {
	path  string
	query url.Values
	// raw is the decoded JSON object, to see which fields are present.
	raw      map[string]any
	reports  []infobip.DeliveryReport // dlrPath
	tracking sandbox.TrackingEvent    // trackPath
	platform sandbox.PlatformEvent    // platformPath
}

// hooks stands for all three of ibmail's Infobip webhooks on one server, so
// that the order between a report and its tracking event shows. Every body
// is checked against its webhook's schema; queued statuses are answered
// first, per path, then 200.
type hooks struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	posts   []hookPost
	answers map[string][]int
}

func newHooks(t *testing.T) *hooks {
	t.Helper()
	h := &hooks{t: t, answers: map[string][]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

// url is where path on the hooks server is, with the rest (a query) kept.
func (h *hooks) url(pathAndQuery string) string { return h.srv.URL + pathAndQuery }

func (h *hooks) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		h.t.Error(err)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		h.t.Errorf("%s: Content-Type = %q, want application/json", r.URL.Path, ct)
	}
	p := hookPost{path: r.URL.Path, query: r.URL.Query()}
	v := spec.MustLoad()
	var reps infobip.DeliveryReports
	var target any
	switch r.URL.Path {
	case dlrPath:
		err, target = v.ValidateDeliveryReports(body), &reps
	case trackPath:
		err, target = v.ValidateTrackingReport(body), &p.tracking
	case platformPath:
		err, target = v.ValidatePlatformEvent(body), &p.platform
	default:
		h.t.Errorf("POST to unknown path %s", r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if err != nil {
		h.t.Errorf("%s body %s: %v", r.URL.Path, body, err)
	}
	if err := json.Unmarshal(body, target); err != nil {
		h.t.Errorf("%s body: %v", r.URL.Path, err)
	}
	_ = json.Unmarshal(body, &p.raw)
	p.reports = reps.Results
	h.mu.Lock()
	defer h.mu.Unlock()
	status := http.StatusOK
	if q := h.answers[r.URL.Path]; len(q) > 0 {
		status, h.answers[r.URL.Path] = q[0], q[1:]
	}
	if status == http.StatusOK {
		h.posts = append(h.posts, p)
	}
	w.WriteHeader(status)
}

// answerFirst makes the next POSTs to path get these statuses.
func (h *hooks) answerFirst(path string, statuses ...int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answers[path] = append(h.answers[path], statuses...)
}

// received returns the POSTs answered 200 so far, in order.
func (h *hooks) received() []hookPost {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookPost(nil), h.posts...)
}

// on returns the POSTs to path, in order.
func (h *hooks) on(path string) []hookPost {
	var out []hookPost
	for _, p := range h.received() {
		if p.path == path {
			out = append(out, p)
		}
	}
	return out
}

// reports returns every delivery report received, in order.
func (h *hooks) reports() []infobip.DeliveryReport {
	var out []infobip.DeliveryReport
	for _, p := range h.on(dlrPath) {
		out = append(out, p.reports...)
	}
	return out
}

// trackingEvents returns every tracking event received, in order.
func (h *hooks) trackingEvents() []sandbox.TrackingEvent {
	var out []sandbox.TrackingEvent
	for _, p := range h.on(trackPath) {
		out = append(out, p.tracking)
	}
	return out
}

// platformEvents returns every platform event received, in order.
func (h *hooks) platformEvents() []sandbox.PlatformEvent {
	var out []sandbox.PlatformEvent
	for _, p := range h.on(platformPath) {
		out = append(out, p.platform)
	}
	return out
}

// reportFor returns the last delivery report of address, or false.
func (h *hooks) reportFor(address string) (infobip.DeliveryReport, bool) {
	var got infobip.DeliveryReport
	found := false
	for _, r := range h.reports() {
		if strings.EqualFold(r.To, address) {
			got, found = r, true
		}
	}
	return got, found
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func boolp(b bool) *bool { return &b }
