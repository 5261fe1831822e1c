package main_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store/postgres/pgtest"
)

// pgProxy stands between ibmaild and PostgreSQL so that the test can take
// the database away, as a network partition or a failover would, without
// touching the PostgreSQL server that other tests share.
type pgProxy struct {
	net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func startPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{Listener: l, target: target, conns: map[net.Conn]bool{}}
	// Registered after FreshSchema's cleanup, so run before it: the schema
	// cannot be dropped while sessions through the proxy hold locks on it.
	t.Cleanup(func() { l.Close(); p.cut() })
	go func() {
		for c, err := l.Accept(); err == nil; c, err = l.Accept() {
			go p.forward(c)
		}
	}()
	return p
}

// forward refuses a connection during a cut before dialing PostgreSQL: the
// pool's attempts to reconnect would otherwise each fork a backend there,
// and on a small machine that storm alone delays the recovery by seconds.
func (p *pgProxy) forward(c net.Conn) {
	defer c.Close()
	var up net.Conn
	err := net.ErrClosed
	p.mu.Lock()
	if !p.down {
		if up, err = net.Dial("tcp", p.target); err == nil {
			p.conns[c], p.conns[up] = true, true
		}
	}
	p.mu.Unlock()
	if err != nil {
		return
	}
	defer up.Close()
	go func() { io.Copy(up, c); up.Close() }() //nolint:errcheck // ends when either side closes
	io.Copy(c, up)                             //nolint:errcheck
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut breaks every open connection, and every new one until restore.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *pgProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// postLikeInfobip posts a body until it is answered 200, retrying on 503
// and connection errors as Infobip does, and counts the 503s. Any other
// answer is an error: Infobip would not retry it, or would drop the body.
func postLikeInfobip(t *testing.T, url string, body []byte, unavailable *atomic.Int64) bool {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	for giveUp := time.Now().Add(2 * time.Minute); time.Now().Before(giveUp); time.Sleep(100 * time.Millisecond) {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			continue
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return true
		case http.StatusServiceUnavailable:
			unavailable.Add(1)
		default:
			t.Errorf("webhook answered %d, want 200 or 503", resp.StatusCode)
			return false
		}
	}
	t.Errorf("a body was never acknowledged")
	return false
}

// TestStoreOutageAndRecovery takes PostgreSQL away from a running ibmaild
// for a few seconds while Infobip posts delivery reports and a send is being
// dispatched. A store outage must cost availability, never data: the
// webhook must answer 503, which Infobip retries, and never 200 for reports
// it did not keep; a report whose commit raced the cut must not become two
// events on the retry; a batch whose outcome could not be recorded must be
// looked up in Infobip's logs rather than sent again; and the process must
// ride the outage out rather than exit. /readyz must say the replica cannot
// keep reports while /healthz stays 200, so that a load balancer steers
// traffic away from it instead of restarting it.
func TestStoreOutageAndRecovery(t *testing.T) {
	const key, secret = "outage-sandbox-key-0123456789", "outage-webhook-secret"
	const bodies, perBody = 40, 25
	u, err := url.Parse(pgtest.FreshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startPGProxy(t, u.Host)
	u.Host = proxy.Addr().String()
	keyFile := filepath.Join(t.TempDir(), "encryption-key")
	if err := os.WriteFile(keyFile, bytes.Repeat([]byte("ab"), 32), 0o600); err != nil {
		t.Fatal(err)
	}
	// A slow sandbox and one request at a time keep the send's five batches
	// going out across the cut, so that one is at Infobip when it comes and
	// its result cannot be recorded. Its lease, short so that the test
	// need not wait long, then runs out, and it is found in Infobip's logs
	// rather than sent again.
	sb := startSandboxProcess(t, key, "--latency", "1s")
	d := startDaemon(t, daemonBin, t.TempDir(), "--db", u.String(), "--encryption-key-file", keyFile,
		"--allow-base-url", sb, "--send-concurrency", "1", "--dispatch-lease", "6s", "--webhook-secret", secret)
	provisionSender(t, d.http, d.http, sb, key)
	sendURL := d.http + createSend(t, d.http, 5000, nil)
	waitPartSent(t, sendURL, 1000)

	var unavailable, acked atomic.Int64
	webhook := d.http + "/v1/webhooks/infobip/delivery-reports?token=" + secret
	var wg sync.WaitGroup
	defer func() { proxy.restore(); wg.Wait() }() // no poster may outlive a t.Fatal below
	for w := range 4 {
		wg.Go(func() {
			for b := w; b < bodies; b += 4 {
				// hardBounceBody's addresses repeat from body to body: each
				// report here must make a profile of its own.
				body := bytes.ReplaceAll(hardBounceBody(fmt.Sprintf("outage-%d", b), perBody), []byte(`"to":"user`), fmt.Appendf(nil, `"to":"b%d-user`, b))
				if postLikeInfobip(t, webhook, body, &unavailable) {
					acked.Add(1)
				}
				time.Sleep(300 * time.Millisecond) // spread the bodies over the outage
			}
		})
	}
	waitUntil(t, "the first bodies to be acknowledged", func() bool { return acked.Load() >= 4 })

	proxy.cut()
	time.Sleep(time.Second)
	if code, _ := call(t, http.MethodGet, d.http+"/readyz", nil); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d, want 503", code)
	}
	if code, _ := call(t, http.MethodGet, d.http+"/healthz", nil); code != http.StatusOK {
		t.Errorf("/healthz during the outage: %d, want 200 (the process itself is fine)", code)
	}
	time.Sleep(2 * time.Second)
	proxy.restore()
	waitUntil(t, "/readyz to answer 200 after the store came back", func() bool {
		code, _ := call(t, http.MethodGet, d.http+"/readyz", nil)
		return code == http.StatusOK
	})
	wg.Wait()
	t.Logf("webhook: %d bodies acknowledged, %d answers 503", acked.Load(), unavailable.Load())
	if unavailable.Load() == 0 {
		t.Error("no webhook call was answered 503: the outage did not reach the webhook, and the test proves nothing")
	}

	seen := map[string]int{}
	for token := ""; ; {
		code, got := call(t, http.MethodPost, d.http+"/v1/profiles:search", map[string]any{"eventNames": []string{"newsletter.hardbounce"}, "pageSize": 1000, "pageToken": token})
		if code != http.StatusOK {
			t.Fatalf("profiles:search: %d %v", code, got)
		}
		profiles, _ := got["profiles"].([]any)
		for _, p := range profiles {
			if m := p.(map[string]any); m["eventCount"] != 1.0 {
				t.Errorf("profile %v has %v hardbounce events, want 1", m["profileId"], m["eventCount"])
			}
			seen[p.(map[string]any)["email"].(string)]++
		}
		if token, _ = got["nextPageToken"].(string); token == "" {
			break
		}
	}
	for b := range bodies {
		for i := range perBody {
			if addr := fmt.Sprintf("b%d-user%d@example.com", b, i); seen[addr] != 1 {
				t.Errorf("%s found %d times, want once", addr, seen[addr])
			}
		}
	}
	if len(seen) != bodies*perBody {
		t.Errorf("%d profiles with a hardbounce, want %d", len(seen), bodies*perBody)
	}

	final := waitSendDone(t, "the send to finish after the outage", sendURL)
	if final["acceptedCount"] != 5000.0 {
		t.Errorf("send = %v, want 5000 accepted", final)
	}
	checkSandboxGotEachOnce(t, sb, 5000)
	// Only this process listens on its port: an answer now means it rode
	// the outage out.
	if code, _ := call(t, http.MethodGet, d.http+"/healthz", nil); code != http.StatusOK {
		t.Errorf("/healthz at the end: %d\n%s", code, d.stderr)
	}
	if log := d.stderr.String(); strings.Contains(log, secret) || strings.Contains(log, key) {
		t.Error("the webhook secret or the API key appears in the log")
	}
}
