package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/buildinfo"
	"github.com/ibmail/ibmail/infobip"
)

// lockedBuffer is written by the server goroutine and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestHelpListsEveryFlag(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--help"}, io.Discard, &stderr, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run --help: %v", err)
	}
	for _, f := range []string{"addr", "api-key", "latency", "rate", "fail-rate", "lose-rate", "lose-mode", "report-delay",
		"duplicate-rate", "bounce-rate", "generic-group-names", "retry-after", "limited-key", "seed", "e429-body",
		"notify-url", "domains", "report-retries", "tracking-url", "platform-events-url", "bounce-warn-percent",
		"bounce-block-percent", "bounce-min-recipients", "block-duration"} {
		if !strings.Contains(stderr.String(), "  -"+f+" ") && !strings.Contains(stderr.String(), "  -"+f+"\n") {
			t.Errorf("--help does not document --%s", f)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--fail-rate", "1.5"},
		{"--lose-rate", "-0.1"},
		{"--lose-mode", "vanish"},
		{"--domains", "a.example:weird"},
		{"--latency", "soon"},
		{"extra"},
		{"--addr", "localhost"},
		{"--report-workers", "0"},
		{"--report-batch", "-1"},
		{"--report-retry-base", "0s"},
		{"--retry-after", "-1s"},
		{"--max-logs", "0"},
		{"--notify-url", "ftp://x"},
		{"--tracking-url", "/track"},
		{"--platform-events-url", "mailto:x@example.com"},
		{"--bounce-warn-percent", "101"},
		{"--bounce-block-percent", "-1"},
		{"--bounce-warn-percent", "6", "--bounce-block-percent", "5"},
		{"--bounce-min-recipients", "0"},
		{"--block-duration", "0s"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard, nil); err == nil {
			t.Errorf("run %q: want an error", args)
		}
	}
}

func TestServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	var stdout lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--api-key", "k1", "--limited-key", "k2",
			"--domains", "a.example, b.example:blocked", "--report-delay", "0s"}, &stdout, io.Discard,
			func(addr string) { ready <- addr })
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	c, err := infobip.New(infobip.Config{BaseURL: "http://" + addr, APIKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Domains(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Results) != 2 || !d.Results[1].Blocked || d.Results[0].DomainName != "a.example" {
		t.Errorf("domains = %+v", d.Results)
	}
	limited, _ := infobip.New(infobip.Config{BaseURL: "http://" + addr, APIKey: "k2"})
	if _, err := limited.Domains(ctx, 1); !infobip.IsForbidden(err) {
		t.Errorf("limited key: %v, want 403", err)
	}
	resp, err := http.Get("http://" + addr + "/sandbox/stats")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(body), `"requests":2`) {
		t.Errorf("stats = %s", body)
	}
	if !strings.Contains(stdout.String(), "listening on http://"+addr) {
		t.Errorf("stdout = %q", stdout.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// The tracking and bounce-rate flags reach the sandbox: a send of two hard
// bounces and a complaint, with a minimum sample of 3, posts the warning
// and the block to --platform-events-url (token kept) and the complaint to
// --tracking-url; the admin route lifts the block.
func TestTrackingAndBounceFlags(t *testing.T) {
	type hit struct{ path, token, body string }
	hits := make(chan hit, 16)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hits <- hit{r.URL.Path, r.URL.Query().Get("token"), string(body)}
	}))
	defer hooks.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--report-delay", "0s", "--domains", "a.example",
			"--tracking-url", hooks.URL + "/track?token=t1", "--platform-events-url", hooks.URL + "/platform?token=p1",
			"--bounce-min-recipients", "3", "--bounce-warn-percent", "10", "--bounce-block-percent", "60", "--block-duration", "1h"},
			io.Discard, io.Discard, func(addr string) { ready <- addr })
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	c, err := infobip.New(infobip.Config{BaseURL: "http://" + addr, APIKey: "any"})
	if err != nil {
		t.Fatal(err)
	}
	no := false
	_, err = c.Send(ctx, infobip.SendRequest{From: "news@a.example", Subject: "s", TrackOpens: &no, TrackClicks: &no,
		To: []infobip.Recipient{{Email: "hardbounce-1@x.example"}, {Email: "hardbounce-2@x.example"}, {Email: "complain@x.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]hit{}
	timeout := time.After(30 * time.Second)
	for len(got) < 3 {
		select {
		case h := <-hits:
			key := h.path
			if h.path == "/platform" {
				key += strings.Split(strings.Split(h.body, `"type":"`)[1], `"`)[0]
			}
			got[key] = h
		case <-timeout:
			t.Fatalf("events so far: %+v", got)
		}
	}
	if h := got["/track"]; h.token != "t1" || !strings.Contains(h.body, `"notificationType":"COMPLAINED"`) {
		t.Errorf("tracking event %+v", h)
	}
	warn, block := got["/platformHIGH_BOUNCE_RATE_WARNING"], got["/platformHIGH_BOUNCE_RATE_BLOCKED"]
	if warn.token != "p1" || !strings.Contains(warn.body, `"warnThreshold":10`) || block.token != "p1" || !strings.Contains(block.body, `"blockThreshold":60`) {
		t.Errorf("platform events %+v %+v", warn, block)
	}
	d, err := c.Domains(ctx, 10)
	if err != nil || len(d.Results) != 1 || !d.Results[0].Blocked {
		t.Errorf("domains while blocked: %+v %v", d, err)
	}
	resp, err := http.Post("http://"+addr+"/sandbox/domains/a.example/unblock", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != `{"domain":"a.example","unblocked":true}` {
		t.Errorf("unblock: %s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestVersionFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, &out, &errOut, nil); err != nil {
		t.Fatalf("run --version: %v (%s)", err, errOut.String())
	}
	if got := out.String(); !strings.HasPrefix(got, "infobip-sandbox "+buildinfo.Read().Version) {
		t.Errorf("--version printed %q", got)
	}
}
