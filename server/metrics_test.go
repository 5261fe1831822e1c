package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

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
