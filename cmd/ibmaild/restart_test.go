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

// provisionSender creates connection c1 to the sandbox at sandboxURL, with
// key, and sender s1 on it: what every test that sends needs first. The
// connection is created through connURL and the sender through senderURL,
// so that a test with replicas can create them on different ones, as a
// load balancer would spread the calls.
func provisionSender(t *testing.T, connURL, senderURL, sandboxURL, key string) {
	t.Helper()
	if code, got := call(t, http.MethodPost, connURL+"/v1/connections", map[string]any{"id": "c1", "apiKey": key, "baseUrl": sandboxURL}); code != http.StatusOK {
		t.Fatalf("create connection on %s: %d %v", connURL, code, got)
	}
	if code, got := call(t, http.MethodPost, senderURL+"/v1/senders", map[string]any{"id": "s1", "connectionId": "c1", "fromAddress": "news@example.com"}); code != http.StatusOK {
		t.Fatalf("create sender on %s: %d %v", senderURL, code, got)
	}
}

// createSend posts a send from s1 to n recipients p<i> / u<i>@example.com
// through baseURL, with extra fields (such as "idempotencyKey") added to
// the request, and returns the send's path, /v1/sends/<id>: a path rather
// than a URL, because the tests read it from another replica or from a
// restarted process on another port.
func createSend(t *testing.T, baseURL string, n int, extra map[string]any) (sendPath string) {
	t.Helper()
	rs := make([]map[string]any, n)
	for i := range rs {
		rs[i] = map[string]any{"profileId": fmt.Sprintf("p%d", i), "email": fmt.Sprintf("u%d@example.com", i)}
	}
	req := map[string]any{"senderId": "s1", "subject": "s", "text": "t", "recipients": rs}
	for k, v := range extra {
		req[k] = v
	}
	code, got := call(t, http.MethodPost, baseURL+"/v1/sends", req)
	if code != http.StatusOK {
		t.Fatalf("create send: %d %v", code, got)
	}
	return "/v1/sends/" + got["send"].(map[string]any)["id"].(string)
}

// waitPartSent waits until at least accepted recipients of the send at
// sendURL are accepted, so that a test can break something mid-send.
func waitPartSent(t *testing.T, sendURL string, accepted float64) {
	t.Helper()
	waitUntil(t, "part of the send to go out", func() bool {
		_, got := call(t, http.MethodGet, sendURL, nil)
		s, _ := got["send"].(map[string]any)
		n, _ := s["acceptedCount"].(float64)
		return n >= accepted
	})
}

// waitSendDone waits, as what, until the send at sendURL is done, and
// returns it for the caller's checks of its counts.
func waitSendDone(t *testing.T, what, sendURL string) map[string]any {
	t.Helper()
	var final map[string]any
	waitUntil(t, what, func() bool {
		_, got := call(t, http.MethodGet, sendURL, nil)
		final, _ = got["send"].(map[string]any)
		return final["state"] == "SEND_STATE_DONE"
	})
	return final
}

// checkSandboxGotEachOnce checks that the sandbox at sandboxURL received n
// recipients and no duplicate: each recipient of a send exactly once, what
// a send must achieve whatever broke along the way.
func checkSandboxGotEachOnce(t *testing.T, sandboxURL string, n int) {
	t.Helper()
	code, stats := call(t, http.MethodGet, sandboxURL+"/sandbox/stats", nil)
	if stats["recipients"] != float64(n) || stats["duplicateRecipients"] != 0.0 {
		t.Errorf("sandbox stats %v (status %d); want %d recipients, 0 duplicates", stats, code, n)
	}
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
	provisionSender(t, d.http, d.http, sb, key)
	sendPath := createSend(t, d.http, 8000, map[string]any{"idempotencyKey": "k1"})

	waitPartSent(t, d.http+sendPath, 2000)
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.cmd.Wait() //nolint:errcheck
	_, mid := call(t, http.MethodGet, sb+"/sandbox/stats", nil)

	d = startDaemon(t, daemonBin, dataDir, args...)
	final := waitSendDone(t, "the send to finish after the restart", d.http+sendPath)
	if final["acceptedCount"] != 8000.0 {
		t.Errorf("send after restart = %v, want 8000 accepted", final)
	}
	checkSandboxGotEachOnce(t, sb, 8000)
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
