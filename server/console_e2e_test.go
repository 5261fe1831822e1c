package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
)

// TestConsoleServed checks the console is served, without a caller token
// even when the API needs one (the page asks for it), with its headers, and
// that /console leads to /console/.
func TestConsoleServed(t *testing.T) {
	env := newTestEnv(t, withServerOptions(func(o *server.Options) { o.Tokens = testTokens(t) }))
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/console/", http.StatusOK, `id="main"`},
		{"/console/some/route", http.StatusOK, `id="main"`},
		{"/console", http.StatusMovedPermanently, ""},
	}
	for _, tt := range tests {
		resp, err := noRedirect.Get(env.rest.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || !strings.Contains(string(b), tt.wantBody) {
			t.Errorf("GET %s: %d, want %d with %q", tt.path, resp.StatusCode, tt.wantStatus, tt.wantBody)
		}
		if tt.wantStatus == http.StatusOK && !strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy = %q", tt.path, resp.Header.Get("Content-Security-Policy"))
		}
	}
}

// TestConsoleE2E drives the operator console in Debian's headless Chromium
// (console/e2e/run.mjs, playwright-core) against this server with the
// sandbox as its Infobip: sign in, add and test a connection, add a sender,
// send to bouncing addresses, see the bounce on the profile card and the
// suppression, run a segmentation; then, signed in with a read token, an action the
// server refuses is no longer offered. It writes docs/console/*.png. Without
// node, Chromium or console/node_modules it skips, unless
// IBMAIL_CONSOLE_E2E_REQUIRED is set (as .ci/run does).
func TestConsoleE2E(t *testing.T) {
	required := os.Getenv("IBMAIL_CONSOLE_E2E_REQUIRED") != ""
	missing := func(what string) {
		t.Helper()
		if required {
			t.Fatalf("%s is missing and IBMAIL_CONSOLE_E2E_REQUIRED is set", what)
		}
		t.Skipf("%s is missing: the console's end-to-end test needs it (npm ci --prefix console; apt-get install chromium)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing(chromium)
	}
	if _, err := os.Stat(filepath.Join("..", "console", "node_modules", "playwright-core")); err != nil {
		missing("console/node_modules/playwright-core")
	}
	_, url := newSandbox(t, sandbox.Options{})
	tokens := testTokens(t)
	env := newTestEnv(t, withAllowedBaseURL(url), withDispatcher(nil), withServerOptions(func(o *server.Options) { o.Tokens = tokens }))

	// The console is served with its security headers.
	resp, err := http.Get(env.rest.URL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q, want default-src 'self'", got)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}

	shots, err := filepath.Abs(filepath.Join("..", "docs", "console"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	// A report of an error group no rule knows, for the attention page.
	if code, resp := env.postWebhook(t, body(newGroupReport("attention-1"))); code != 200 || resp["unclassified"] != 1.0 {
		t.Fatalf("webhook = %d %v, want one unclassified report", code, resp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("..", "console", "e2e", "run.mjs"))
	cmd.Env = append(os.Environ(), "CONSOLE_URL="+env.rest.URL, "SANDBOX_URL="+url, "SANDBOX_KEY="+sandboxKey, "SHOTS="+shots, "ADMIN_TOKEN="+adminToken, "READ_TOKEN="+readToken, "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	t.Logf("run.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("console e2e: %v", err)
	}
}
