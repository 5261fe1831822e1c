package main_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/ibmail/ibmail/store/postgres/pgtest"
)

// startReplicas starts n ibmaild replicas on one fresh PostgreSQL schema,
// sharing the key that seals API keys, as replicas behind a load balancer.
func startReplicas(t *testing.T, n int, extra ...string) []*daemon {
	t.Helper()
	dsn := pgtest.FreshSchema(t)
	keyFile := filepath.Join(t.TempDir(), "encryption-key")
	if err := os.WriteFile(keyFile, bytes.Repeat([]byte("ab"), 32), 0o600); err != nil {
		t.Fatal(err)
	}
	var ds []*daemon
	for i := range n {
		args := append([]string{"--db", dsn, "--encryption-key-file", keyFile, "--replica-id", fmt.Sprintf("replica-%d", i)}, extra...)
		ds = append(ds, startDaemon(t, daemonBin, t.TempDir(), args...))
	}
	return ds
}

// TestReplicasDeduplicateConcurrentWebhooks posts the same body to two
// replicas at once, several times, and expects one event per report.
func TestReplicasDeduplicateConcurrentWebhooks(t *testing.T) {
	const secret = "replica-webhook-secret"
	ds := startReplicas(t, 2, "--webhook-secret", secret)
	body := hardBounceBody("dup", 50)
	var wg sync.WaitGroup
	accepted := make([]float64, 8)
	for i := range accepted {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, ds[i%2].http+"/v1/webhooks/infobip/delivery-reports?token="+secret, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("replica %d answered %d", i%2, resp.StatusCode)
			}
			var got map[string]any
			decodeJSON(resp, &got)
			accepted[i], _ = got["accepted"].(float64)
		}()
	}
	wg.Wait()
	var total float64
	for _, a := range accepted {
		total += a
	}
	if total != 50 {
		t.Errorf("the replicas accepted %v reports in all, want each of the 50 once (per call: %v)", total, accepted)
	}
	for _, d := range ds {
		_, got := call(t, http.MethodPost, d.http+"/v1/profiles:search", map[string]any{"eventNames": []string{"newsletter.hardbounce"}, "pageSize": 1000})
		profiles, _ := got["profiles"].([]any)
		if len(profiles) != 50 {
			t.Fatalf("%d profiles with a hardbounce, want 50", len(profiles))
		}
		for _, p := range profiles {
			if c := p.(map[string]any)["eventCount"]; c != 1.0 {
				t.Fatalf("profile %v has %v events, want 1", p, c)
			}
		}
	}
}

// TestSendCompletesWhenAReplicaDies dispatches a send from two replicas,
// kills one mid-send, and expects the other to finish it with every
// recipient at the sandbox exactly once.
func TestSendCompletesWhenAReplicaDies(t *testing.T) {
	const key = "replicas-sandbox-key-0123456789"
	sb := startSandboxProcess(t, key, "--latency", "100ms")
	ds := startReplicas(t, 2, "--allow-base-url", sb, "--send-concurrency", "1", "--dispatch-workers", "2", "--dispatch-lease", "3s")
	if code, got := call(t, http.MethodPost, ds[0].http+"/v1/connections", map[string]any{"id": "c1", "apiKey": key, "baseUrl": sb}); code != http.StatusOK {
		t.Fatalf("create connection: %d %v", code, got)
	}
	if code, got := call(t, http.MethodPost, ds[1].http+"/v1/senders", map[string]any{"id": "s1", "connectionId": "c1", "fromAddress": "news@example.com"}); code != http.StatusOK {
		t.Fatalf("create sender on the other replica: %d %v", code, got)
	}
	var rs []map[string]any
	for i := range 12000 {
		rs = append(rs, map[string]any{"profileId": fmt.Sprintf("p%d", i), "email": fmt.Sprintf("u%d@example.com", i)})
	}
	code, got := call(t, http.MethodPost, ds[1].http+"/v1/sends", map[string]any{"senderId": "s1", "subject": "s", "text": "t", "recipients": rs})
	if code != http.StatusOK {
		t.Fatalf("create send: %d %v", code, got)
	}
	sendURL := "/v1/sends/" + got["send"].(map[string]any)["id"].(string)
	waitUntil(t, "part of the send to go out", func() bool {
		_, got := call(t, http.MethodGet, ds[1].http+sendURL, nil)
		s, _ := got["send"].(map[string]any)
		accepted, _ := s["acceptedCount"].(float64)
		return accepted >= 3000
	})
	if err := ds[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ds[0].cmd.Wait() //nolint:errcheck
	var final map[string]any
	waitUntil(t, "the surviving replica to finish the send", func() bool {
		_, got := call(t, http.MethodGet, ds[1].http+sendURL, nil)
		final, _ = got["send"].(map[string]any)
		return final["state"] == "SEND_STATE_DONE"
	})
	if final["acceptedCount"] != 12000.0 {
		t.Errorf("send = %v, want 12000 accepted", final)
	}
	_, stats := call(t, http.MethodGet, sb+"/sandbox/stats", nil)
	if stats["recipients"] != 12000.0 || stats["duplicateRecipients"] != 0.0 {
		t.Errorf("sandbox stats %v; want 12000 recipients, 0 duplicates", stats)
	}
}
