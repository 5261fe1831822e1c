package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startSandboxProcess runs the standalone sandbox and waits until it serves.
func startSandboxProcess(t *testing.T, key string, extra ...string) string {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(sandboxBin, append([]string{"--addr", addr, "--api-key", key}, extra...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
	url := "http://" + addr
	waitUntil(t, "the sandbox to serve", func() bool {
		resp, err := http.Get(url + "/sandbox/stats")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	return url
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call sends JSON to a REST route and decodes the JSON answer.
func call(t *testing.T, method, url string, in any) (int, map[string]any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	decodeJSON(resp, &out)
	return resp.StatusCode, out
}

// TestSendSurvivesKill9MidWay kills ibmaild while a send is half
// dispatched, restarts it, and expects every recipient at the sandbox
// exactly once.
func TestSendSurvivesKill9MidWay(t *testing.T) {
	const key = "restart-sandbox-key-0123456789"
	sb := startSandboxProcess(t, key, "--latency", "150ms")
	dataDir := t.TempDir()
	// The default two-minute lease stays: the restart must take its own
	// in-flight batch back at once, not wait for the lease.
	args := []string{"--allow-base-url", sb, "--send-concurrency", "1", "--dispatch-workers", "1"}
	d := startDaemon(t, daemonBin, dataDir, args...)
	if code, got := call(t, http.MethodPost, d.http+"/v1/connections", map[string]any{"id": "c1", "apiKey": key, "baseUrl": sb}); code != http.StatusOK {
		t.Fatalf("create connection: %d %v", code, got)
	}
	if code, got := call(t, http.MethodPost, d.http+"/v1/senders", map[string]any{"id": "s1", "connectionId": "c1", "fromAddress": "news@example.com"}); code != http.StatusOK {
		t.Fatalf("create sender: %d %v", code, got)
	}
	var rs []map[string]any
	for i := range 8000 {
		rs = append(rs, map[string]any{"profileId": fmt.Sprintf("p%d", i), "email": fmt.Sprintf("u%d@example.com", i)})
	}
	code, got := call(t, http.MethodPost, d.http+"/v1/sends", map[string]any{"senderId": "s1", "subject": "s", "text": "t", "recipients": rs, "idempotencyKey": "k1"})
	if code != http.StatusOK {
		t.Fatalf("create send: %d %v", code, got)
	}
	sendID := got["send"].(map[string]any)["id"].(string)
	sendURL := func(base string) string { return base + "/v1/sends/" + sendID }

	waitUntil(t, "part of the send to go out", func() bool {
		_, got := call(t, http.MethodGet, sendURL(d.http), nil)
		s, _ := got["send"].(map[string]any)
		accepted, _ := s["acceptedCount"].(float64)
		return accepted >= 2000
	})
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.cmd.Wait() //nolint:errcheck
	_, mid := call(t, http.MethodGet, sb+"/sandbox/stats", nil)

	d = startDaemon(t, daemonBin, dataDir, args...)
	var final map[string]any
	waitUntil(t, "the send to finish after the restart", func() bool {
		_, got := call(t, http.MethodGet, sendURL(d.http), nil)
		final, _ = got["send"].(map[string]any)
		return final["state"] == "SEND_STATE_DONE"
	})
	if final["acceptedCount"] != 8000.0 {
		t.Errorf("send after restart = %v, want 8000 accepted", final)
	}
	_, stats := call(t, http.MethodGet, sb+"/sandbox/stats", nil)
	if stats["recipients"] != 8000.0 || stats["duplicateRecipients"] != 0.0 {
		t.Errorf("sandbox stats %v; want 8000 recipients, 0 duplicates", stats)
	}
	if mid["recipients"] == 8000.0 {
		t.Errorf("the whole send went out before the kill (%v): the test proves nothing", mid)
	}
	if strings.Contains(d.stderr.String(), key) {
		t.Error("the API key appears in the log")
	}
}

func decodeJSON(resp *http.Response, v any) {
	json.NewDecoder(resp.Body).Decode(v) //nolint:errcheck // checked by the callers' assertions
}
