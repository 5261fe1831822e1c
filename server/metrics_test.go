package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"

	"github.com/ibmail/ibmail/buildinfo"
	"github.com/ibmail/ibmail/metrics"
	"github.com/ibmail/ibmail/server"
)

// TestMetrics ingests a body and reads the counters it moves, and checks
// that GET /metrics serves them in Prometheus' text format.
func TestMetrics(t *testing.T) {
	env := newTestEnv(t)
	hard := metrics.ReportsIngested.WithLabelValues("event", "newsletter.hardbounce")
	unclassified := metrics.ReportsIngested.WithLabelValues("unclassified", "")
	webhookOK := metrics.HTTPRequests.WithLabelValues("webhook", "200")
	ingestRPC := metrics.RPCs.WithLabelValues("/ibmail.v1.DeliveryReportService/IngestDeliveryReports", "OK")
	before := []float64{testutil.ToFloat64(hard), testutil.ToFloat64(unclassified), testutil.ToFloat64(metrics.ReportsDuplicate),
		testutil.ToFloat64(webhookOK), testutil.ToFloat64(ingestRPC)}

	b := body(report("m-1", "a@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"), report("m-2", "b@example.com", 6099, "EC_NEW", 9, "NEW_GROUP"))
	for range 2 {
		if code, got := env.postWebhook(t, b); code != http.StatusOK {
			t.Fatalf("webhook: %d %v", code, got)
		}
	}
	after := []float64{testutil.ToFloat64(hard), testutil.ToFloat64(unclassified), testutil.ToFloat64(metrics.ReportsDuplicate),
		testutil.ToFloat64(webhookOK), testutil.ToFloat64(ingestRPC)}
	names := []string{"hardbounces ingested", "unclassified ingested", "duplicates", "webhook 200s", "ingest RPCs"}
	want := []float64{1, 1, 2, 2, 2}
	for i := range want {
		if got := after[i] - before[i]; got != want[i] {
			t.Errorf("%s moved by %v, want %v", names[i], got, want[i])
		}
	}

	resp, err := http.Get(env.rest.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	for _, line := range []string{`ibmail_reports_ingested_total{event="newsletter.hardbounce",outcome="event"}`, `ibmail_http_requests_total{route="webhook",status="200"}`, "go_goroutines"} {
		if !strings.Contains(string(text), line) {
			t.Errorf("GET /metrics lacks %s", line)
		}
	}
	if strings.Contains(string(text), server.WebhookPath) || strings.Contains(string(text), "a@example.com") {
		t.Error("metrics carry paths or addresses: unbounded label values")
	}
}

// TestOpenAPIServed checks the description and its page are served.
func TestOpenAPIServed(t *testing.T) {
	env := newTestEnv(t)
	for path, want := range map[string]string{"/openapi.json": `"/v1/webhooks/infobip/delivery-reports"`, "/docs": "/openapi.json"} {
		resp, err := http.Get(env.rest.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body without %s", path, resp.StatusCode, want)
		}
	}
}

// TestBacklogMetrics reads the queue gauges of a send no dispatcher takes,
// and checks that a store gone away shows as ibmail_store_up 0 while the
// rest of /metrics is still served.
func TestBacklogMetrics(t *testing.T) {
	env := newTestEnv(t)
	provisionSender(t, env, "https://c1.api.infobip.com")
	if _, err := env.sends.CreateSend(context.Background(), &ibmailv1.CreateSendRequest{
		SenderId: "s1", Subject: "s", Text: "t", Recipients: recipients(2500, ""),
	}); err != nil {
		t.Fatal(err)
	}
	scrape := func() map[string]float64 {
		t.Helper()
		resp, err := http.Get(env.rest.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics = %d", resp.StatusCode)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for name, f := range families {
			for _, m := range f.GetMetric() {
				key := name
				for _, l := range m.GetLabel() {
					key += "{" + l.GetName() + "=" + l.GetValue() + "}"
				}
				got[key] = m.GetGauge().GetValue()
			}
		}
		return got
	}

	got := scrape()
	for key, want := range map[string]float64{
		"ibmail_store_up": 1,
		"ibmail_dispatch_queue_batches{state=pending}":   3, // 2500 recipients, 1000 a batch
		"ibmail_dispatch_queue_batches{state=in_flight}": 0,
		"ibmail_dispatch_queue_batches{state=ambiguous}": 0,
		"ibmail_dispatch_queue_due_batches":              3,
		"ibmail_events_outbox_depth":                     0,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	if lag, ok := got["ibmail_dispatch_queue_lag_seconds"]; !ok || lag < 0 || lag > 60 {
		t.Errorf("ibmail_dispatch_queue_lag_seconds = %v (present %v), want the few seconds since the send", lag, ok)
	}

	if err := env.store.Close(); err != nil {
		t.Fatal(err)
	}
	// The last answer is reused for up to a second.
	waitFor(t, "ibmail_store_up 0", 5*time.Second, func() (bool, string) {
		got = scrape()
		v, ok := got["ibmail_store_up"]
		return ok && v == 0, fmt.Sprintf("ibmail_store_up = %v (present %v)", v, ok)
	})
	if _, ok := got["ibmail_dispatch_queue_batches{state=pending}"]; ok {
		t.Error("with the store closed, queue figures are still served; stale figures would look healthy")
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("with the store closed, the process metrics are gone too")
	}
}

// TestBuildInfo checks that /healthz and /metrics say which build answers.
func TestBuildInfo(t *testing.T) {
	env := newTestEnv(t)
	bi := buildinfo.Read()
	resp, err := http.Get(env.rest.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Status, Version, GoVersion string
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/healthz = %d %s, %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	if got.Status != "ok" || got.Version != bi.Version || got.GoVersion != bi.GoVersion {
		t.Errorf("/healthz = %+v, want status ok and the build %+v", got, bi)
	}

	resp, err = http.Get(env.rest.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`ibmail_build_info{goversion=%q,revision=%q,version=%q} 1`, bi.GoVersion, bi.Revision, bi.Version)
	if !strings.Contains(string(text), want) {
		t.Errorf("GET /metrics lacks %s", want)
	}
}
