package main_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store/postgres/pgtest"
)

// writeKey writes an encryption key of 32 bytes, all b, as hex, and
// returns the file and the key's text.
func writeKey(t *testing.T, b byte) (path, key string) {
	t.Helper()
	key = strings.Repeat(strconv.FormatUint(uint64(b)|0x100, 16)[1:], 32)
	path = filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, key
}

// startRefused runs ibmaild, expecting it to refuse to start, and returns
// what it wrote.
func startRefused(t *testing.T, dataDir string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--data-dir", dataDir, "--grpc-addr", freeAddr(t), "--http-addr", freeAddr(t)}, extra...)
	out, err := exec.CommandContext(ctx, daemonBin, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ibmaild %v did not exit: it started\n%s", extra, out)
	}
	if err == nil {
		t.Fatalf("ibmaild %v exited 0, want a refusal\n%s", extra, out)
	}
	return string(out)
}

// postReports posts a one-report body with credential as the Basic
// password and returns the status.
func postReports(t *testing.T, baseURL, credential, prefix string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, baseURL+"/v1/webhooks/infobip/delivery-reports", bytes.NewReader(hardBounceBody(prefix, 1)))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("infobip", credential)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// readyz returns the status and text of /readyz.
func readyz(t *testing.T, baseURL string) (int, string) {
	t.Helper()
	resp, err := http.Get(baseURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body) //nolint:errcheck
	return resp.StatusCode, b.String()
}

// TestReplicaWithAnotherKeyRefusesToStart starts a replica, then another
// on the same PostgreSQL with another key, from the file and from the
// environment: the second refuses to start, naming the key's source and
// never the key. Before the fix it started, answered /readyz 200 and
// sealed under its own key.
func TestReplicaWithAnotherKeyRefusesToStart(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
	keyA, _ := writeKey(t, 0xab)
	keyB, rawB := writeKey(t, 0xcd)
	a := startDaemon(t, daemonBin, t.TempDir(), "--db", dsn, "--encryption-key-file", keyA, "--replica-id", "a")
	if code, got := call(t, http.MethodPost, a.http+"/v1/connections", map[string]any{"id": "c1", "apiKey": "key-0123456789abcdef", "baseUrl": "https://x1.api.infobip.com"}); code != http.StatusOK {
		t.Fatalf("create connection: %d %v", code, got)
	}
	tests := []struct {
		name       string
		env        string
		args       []string
		wantSource string
	}{
		{"key file", "", []string{"--encryption-key-file", keyB}, "file " + keyB},
		{"environment", "IBMAIL_ENCRYPTION_KEY=" + rawB, nil, "IBMAIL_ENCRYPTION_KEY"},
		{"generated into its data dir", "", nil, "encryption-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				k, v, _ := strings.Cut(tt.env, "=")
				t.Setenv(k, v)
			}
			out := startRefused(t, t.TempDir(), append([]string{"--db", dsn, "--replica-id", "b"}, tt.args...)...)
			for _, want := range []string{"is not the key this store's secrets are sealed under", tt.wantSource} {
				if !strings.Contains(out, want) {
					t.Errorf("refusal does not say %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, rawB) {
				t.Errorf("the refusal shows the key:\n%s", out)
			}
		})
	}
	if code, _ := readyz(t, a.http); code != http.StatusOK {
		t.Errorf("replica a: /readyz %d after the refused starts, want 200", code)
	}
}

// TestEncryptionKeyRotation rotates the key end to end on PostgreSQL:
// with the new key and the previous one the stored API key still opens
// (the connection test passes) and a send goes through the sandbox; a
// replica left on the old key says it is not ready; the new key alone
// then works, and the old key alone is refused.
func TestEncryptionKeyRotation(t *testing.T) {
	const apiKey = "rotation-sandbox-key-0123456789"
	sb := startSandboxProcess(t, apiKey)
	dsn := pgtest.FreshSchema(t)
	oldKey, rawOld := writeKey(t, 0x11)
	newKey, rawNew := writeKey(t, 0x22)
	common := []string{"--db", dsn, "--allow-base-url", sb}
	a := startDaemon(t, daemonBin, t.TempDir(), append(common, "--encryption-key-file", oldKey, "--replica-id", "a")...)
	stale := startDaemon(t, daemonBin, t.TempDir(), append(common, "--encryption-key-file", oldKey, "--replica-id", "stale")...)
	provisionSender(t, a.http, a.http, sb, apiKey)
	waitSendDone(t, "the send before the rotation", a.http+createSend(t, a.http, 3, nil))
	stop(t, a)

	rotated := startDaemon(t, daemonBin, t.TempDir(), append(common, "--encryption-key-file", newKey, "--previous-encryption-key-file", oldKey, "--replica-id", "a")...)
	if code, got := call(t, http.MethodPost, rotated.http+"/v1/connections/c1:test", map[string]any{}); code != http.StatusOK || got["ok"] != true {
		t.Fatalf("connection test after the rotation: %d %v", code, got)
	}
	waitSendDone(t, "a send after the rotation", rotated.http+createSend(t, rotated.http, 2, nil))

	waitUntil(t, "the replica on the old key to stop being ready", func() bool {
		code, text := readyz(t, stale.http)
		return code == http.StatusServiceUnavailable && strings.Contains(text, "encryption key retired")
	})
	if code, got := call(t, http.MethodPatch, stale.http+"/v1/connections/c1", map[string]any{"apiKey": "sealed-under-the-old-key-0123"}); code != http.StatusServiceUnavailable {
		t.Errorf("PATCH apiKey through the replica on the old key: %d %v, want 503", code, got)
	}
	stop(t, rotated)

	// The previous key retired: the new one alone works, the old one alone
	// is refused.
	alone := startDaemon(t, daemonBin, t.TempDir(), append(common, "--encryption-key-file", newKey, "--replica-id", "a")...)
	if code, got := call(t, http.MethodPost, alone.http+"/v1/connections/c1:test", map[string]any{}); code != http.StatusOK || got["ok"] != true {
		t.Fatalf("connection test with the new key alone: %d %v", code, got)
	}
	waitSendDone(t, "a send with the new key alone", alone.http+createSend(t, alone.http, 2, nil))
	// The three sends share recipients; the sandbox must have them all.
	if _, stats := call(t, http.MethodGet, sb+"/sandbox/stats", nil); stats["recipients"] != 7.0 {
		t.Errorf("sandbox stats %v, want the 7 recipients of the three sends", stats)
	}
	out := startRefused(t, t.TempDir(), append(common, "--encryption-key-file", oldKey, "--replica-id", "old")...)
	if !strings.Contains(out, "is not the key this store's secrets are sealed under") {
		t.Errorf("the retired key alone: refusal does not say why:\n%s", out)
	}
	for _, d := range []*daemon{rotated, alone, stale} {
		if log := d.stderr.String(); strings.Contains(log, rawOld) || strings.Contains(log, rawNew) || strings.Contains(log, apiKey) {
			t.Error("a key appears in the log")
		}
	}
}

// stop ends a daemon with SIGTERM and waits for it.
func stop(t *testing.T, d *daemon) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.cmd.Wait() //nolint:errcheck
}

// TestReplicasShareTheGeneratedWebhookSecret signs a report with the
// secret replica a generated and posts it to replica b, which accepted
// only its own before the fix.
func TestReplicasShareTheGeneratedWebhookSecret(t *testing.T) {
	ds := startReplicas(t, 2)
	var secrets []string
	for _, dir := range []string{dataDirOf(t, ds[0]), dataDirOf(t, ds[1])} {
		b, _ := os.ReadFile(filepath.Join(dir, "webhook-secret"))
		if s := strings.TrimSpace(string(b)); s != "" {
			secrets = append(secrets, s)
		}
	}
	if len(secrets) != 1 {
		t.Fatalf("%d replicas wrote a generated secret, want exactly the one that created it", len(secrets))
	}
	for i, d := range ds {
		if code := postReports(t, d.http, secrets[0], "shared"+strconv.Itoa(i)); code != http.StatusOK {
			t.Errorf("replica %d: a report signed with the generated secret answered %d, want 200", i, code)
		}
	}
}

// dataDirOf returns the --data-dir a daemon was started with.
func dataDirOf(t *testing.T, d *daemon) string {
	t.Helper()
	for i, a := range d.cmd.Args {
		if a == "--data-dir" {
			return d.cmd.Args[i+1]
		}
	}
	t.Fatal("no --data-dir")
	return ""
}

// TestExistingWebhookSecretFileIsImported starts on a data dir holding a
// webhook-secret file from an older version: that secret keeps working.
func TestExistingWebhookSecretFileIsImported(t *testing.T) {
	dir := t.TempDir()
	const old = "secret-infobip-was-configured-with"
	if err := os.WriteFile(filepath.Join(dir, "webhook-secret"), []byte(old+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, daemonBin, dir)
	if code := postReports(t, d.http, old, "imported"); code != http.StatusOK {
		t.Errorf("report with the imported secret: %d, want 200", code)
	}
}

// TestWebhookSecretRotationGrace rotates the server-wide secret on one
// replica and a connection's secret on the other: during the grace both
// replicas accept the old and the new secret, after retiring only the new.
func TestWebhookSecretRotationGrace(t *testing.T) {
	ds := startReplicas(t, 2)
	a, b := ds[0], ds[1]
	raw, _ := os.ReadFile(filepath.Join(dataDirOf(t, a), "webhook-secret"))
	if len(raw) == 0 {
		raw, _ = os.ReadFile(filepath.Join(dataDirOf(t, b), "webhook-secret"))
	}
	oldServer := strings.TrimSpace(string(raw))
	code, rot := call(t, http.MethodPost, a.http+"/v1/serverWebhookSecret:rotate", map[string]any{"gracePeriod": "3600s"})
	newServer, _ := rot["webhookSecret"].(string)
	if code != http.StatusOK || newServer == "" || newServer == oldServer {
		t.Fatalf("rotate the server-wide secret: %d %v", code, rot)
	}
	code, conn := call(t, http.MethodPost, b.http+"/v1/connections", map[string]any{"id": "c1", "apiKey": "key-0123456789abcdef", "baseUrl": "https://x1.api.infobip.com"})
	oldConn, _ := conn["webhookSecret"].(string)
	if code != http.StatusOK || oldConn == "" {
		t.Fatalf("create connection: %d %v", code, conn)
	}
	code, rot = call(t, http.MethodPost, b.http+"/v1/connections/c1:rotateWebhookSecret", map[string]any{})
	newConn, _ := rot["webhookSecret"].(string)
	if code != http.StatusOK || newConn == "" || newConn == oldConn {
		t.Fatalf("rotate the connection's secret: %d %v", code, rot)
	}
	if c, _ := rot["connection"].(map[string]any); c["previousWebhookSecretExpireTime"] == nil {
		t.Errorf("the rotated connection does not show until when the previous secret is accepted: %v", c)
	}
	check := func(phase string, want map[string]int) {
		t.Helper()
		for i, d := range ds {
			for name, credential := range map[string]string{"old server-wide": oldServer, "new server-wide": newServer, "old connection": oldConn, "new connection": newConn} {
				if got := postReports(t, d.http, credential, phase+name+strconv.Itoa(i)); got != want[name] {
					t.Errorf("%s, replica %d, %s secret: status %d, want %d", phase, i, name, got, want[name])
				}
			}
		}
	}
	waitUntil(t, "both replicas to accept the new server-wide secret", func() bool {
		return postReports(t, a.http, newServer, "new-a") == http.StatusOK && postReports(t, b.http, newServer, "new-b") == http.StatusOK
	})
	check("grace", map[string]int{"old server-wide": 200, "new server-wide": 200, "old connection": 200, "new connection": 200})
	if code, got := call(t, http.MethodPost, b.http+"/v1/serverWebhookSecret:retirePrevious", map[string]any{}); code != http.StatusOK {
		t.Fatalf("retire the previous server-wide secret: %d %v", code, got)
	}
	if code, got := call(t, http.MethodPost, a.http+"/v1/connections/c1:retirePreviousWebhookSecret", map[string]any{}); code != http.StatusOK {
		t.Fatalf("retire the connection's previous secret: %d %v", code, got)
	}
	// Replica a may have the old server-wide digests cached for up to a
	// second: wait for the refusal rather than assume it.
	waitUntil(t, "both replicas to refuse the retired server-wide secret", func() bool {
		return postReports(t, a.http, oldServer, "wait-a") == http.StatusUnauthorized && postReports(t, b.http, oldServer, "wait-b") == http.StatusUnauthorized
	})
	check("retired", map[string]int{"old server-wide": 401, "new server-wide": 200, "old connection": 401, "new connection": 200})
	for _, d := range ds {
		if log := d.stderr.String(); strings.Contains(log, newServer) || strings.Contains(log, newConn) {
			t.Error("a rotated secret appears in the log")
		}
	}
}

// TestSecondServerOnOneDataDirExits starts a second ibmaild on a data dir
// in use: it exits naming the first one's PID, where before it started
// and fought over the sequencer lease. After the first is killed, the
// stale lock file does not block a new start.
func TestSecondServerOnOneDataDirExits(t *testing.T) {
	dir := t.TempDir()
	first := startDaemon(t, daemonBin, dir)
	out := startRefused(t, dir)
	if want := "pid " + strconv.Itoa(first.cmd.Process.Pid); !strings.Contains(out, want) || !strings.Contains(out, "in use") {
		t.Errorf("second ibmaild on %s: message does not say the dir is in use by %s:\n%s", dir, want, out)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait() //nolint:errcheck
	startDaemon(t, daemonBin, dir)
}
