package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

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
		"notify-url", "domains", "report-retries"} {
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
