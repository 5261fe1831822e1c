package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemonBin and sandboxBin are the binaries TestMain builds for the tests
// here.
var daemonBin, sandboxBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ibmaild-test")
	if err != nil {
		panic(err)
	}
	daemonBin = filepath.Join(dir, "ibmaild")
	sandboxBin = filepath.Join(dir, "infobip-sandbox")
	for bin, pkg := range map[string]string{daemonBin: ".", sandboxBin: "../infobip-sandbox"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running ibmaild process.
type daemon struct {
	cmd    *exec.Cmd
	http   string
	stderr *lockedBuffer
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startDaemon(t *testing.T, bin, dataDir string, extra ...string) *daemon {
	t.Helper()
	httpAddr := freeAddr(t)
	args := append([]string{"--data-dir", dataDir, "--grpc-addr", freeAddr(t), "--http-addr", httpAddr}, extra...)
	cmd := exec.Command(bin, args...)
	d := &daemon{cmd: cmd, http: "http://" + httpAddr, stderr: &lockedBuffer{}}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(d.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ibmaild did not become healthy: %v\n%s", err, d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hardBounceBody(prefix string, n int) []byte {
	var rs []string
	for i := range n {
		rs = append(rs, fmt.Sprintf(`{"messageId":"%s-%d","to":"user%d@example.com","doneAt":"2024-05-01T10:00:00.000+0000",
"status":{"id":4,"groupId":2,"groupName":"UNDELIVERABLE","name":"UNDELIVERABLE_REJECTED_OPERATOR"},
"error":{"id":6012,"name":"EC_HARD_BOUNCE","groupId":2,"groupName":"BOUNCED","permanent":true}}`, prefix, i, i))
	}
	return []byte(`{"results":[` + strings.Join(rs, ",") + `]}`)
}

// TestAcknowledgedReportsSurviveKill9 posts a body, kills the server the
// moment the 200 arrives, and finds every report's event after a restart.
func TestAcknowledgedReportsSurviveKill9(t *testing.T) {
	bin := daemonBin
	dataDir := t.TempDir()
	const secret = "kill9-secret"
	d := startDaemon(t, bin, dataDir, "--webhook-secret", secret)
	req, _ := http.NewRequest(http.MethodPost, d.http+"/v1/webhooks/infobip/delivery-reports?token="+secret, bytes.NewReader(hardBounceBody("k", 100)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook status %d", resp.StatusCode)
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.cmd.Wait() //nolint:errcheck

	d = startDaemon(t, bin, dataDir, "--webhook-secret", secret)
	body := []byte(`{"eventNames":["newsletter.hardbounce"],"pageSize":1000}`)
	resp, err = http.Post(d.http+"/v1/profiles:search", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Profiles []struct{ ProfileID string } `json:"profiles"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Profiles) != 100 {
		t.Errorf("after kill -9 and restart: %d profiles with a hardbounce, want 100", len(got.Profiles))
	}
	if strings.Contains(d.stderr.String(), secret) {
		t.Errorf("the webhook secret appears in the log")
	}
}

// TestGeneratedSecretAndGracefulStop checks the secret generated on first
// start (mode 0600, never logged) and a clean exit on SIGTERM.
func TestGeneratedSecretAndGracefulStop(t *testing.T) {
	bin := daemonBin
	dataDir := t.TempDir()
	d := startDaemon(t, bin, dataDir)
	path := filepath.Join(dataDir, "webhook-secret")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no generated secret: %v", err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("secret file mode = %o, want 600", mode)
	}
	raw, _ := os.ReadFile(path)
	secret := strings.TrimSpace(string(raw))
	req, _ := http.NewRequest(http.MethodPost, d.http+"/v1/webhooks/infobip/delivery-reports", bytes.NewReader(hardBounceBody("g", 1)))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("infobip", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("webhook with the generated secret: status %d", resp.StatusCode)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, d.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ibmaild did not stop within 20s of SIGTERM")
	}
	if strings.Contains(d.stderr.String(), secret) {
		t.Errorf("the generated secret appears in the log")
	}
}

func TestBadRulesFileRefusesToStart(t *testing.T) {
	bin := daemonBin
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - groupId: 2\n    groupName: BOUNCED\n"), 0o600) //nolint:errcheck
	out, err := exec.Command(bin, "--data-dir", t.TempDir(), "--rules-file", rules, "--grpc-addr", freeAddr(t), "--http-addr", freeAddr(t)).CombinedOutput()
	if err == nil {
		t.Fatalf("ibmaild started with a rules file lacking an event")
	}
	if !strings.Contains(string(out), "event") {
		t.Errorf("error does not name the missing event: %s", out)
	}
}

// TestVersionFlag checks that --version prints the build and exits at once,
// whatever else the command line or the environment holds.
func TestVersionFlag(t *testing.T) {
	cmd := exec.Command(daemonBin, "--version", "--db", "not-a-url")
	cmd.Env = append(os.Environ(), "IBMAIL_SEND_RATE=-5")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ibmaild --version: %v\n%s", err, out)
	}
	if got := string(out); !strings.HasPrefix(got, "ibmaild ") || !strings.Contains(got, runtime.Version()) || strings.Count(got, "\n") != 1 {
		t.Errorf("ibmaild --version printed %q, want one line: ibmaild <version> ... %s", got, runtime.Version())
	}
}
