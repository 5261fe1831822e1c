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
	// The sender is created on the other replica than its connection.
	provisionSender(t, ds[0].http, ds[1].http, sb, key)
	sendURL := ds[1].http + createSend(t, ds[1].http, 12000, nil)
	waitPartSent(t, sendURL, 3000)
	if err := ds[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ds[0].cmd.Wait() //nolint:errcheck
	final := waitSendDone(t, "the surviving replica to finish the send", sendURL)
	if final["acceptedCount"] != 12000.0 {
		t.Errorf("send = %v, want 12000 accepted", final)
	}
	checkSandboxGotEachOnce(t, sb, 12000)
}
