package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
)

// ingestClients is the load of the ingest benchmarks: 32 concurrent
// webhook requests, as Infobip's retries of a busy hour bring, on 2 cores.
const ingestClients = 32

// BenchmarkWebhookIngest posts 100-report delivery-report bodies from 32
// concurrent clients over loopback HTTP to a whole server, on the default
// SQLite store and on PostgreSQL; each 200 means the body is durable. One
// op is one body.
func BenchmarkWebhookIngest(b *testing.B) {
	b.Run("store=sqlite", func(b *testing.B) { benchIngest(b, server.WebhookPath, sandbox.ExampleDeliveryReports, 100) })
	b.Run("store=postgres", func(b *testing.B) {
		benchIngest(b, server.WebhookPath, sandbox.ExampleDeliveryReports, 100, withPostgres())
	})
}

// benchIngest posts b.N bodies of perBody reports, made by body, to path
// from ingestClients clients and reports reports/s and the p50 and p99 of
// a body's answer.
func benchIngest(b *testing.B, path string, body func(prefix string, seq, n int) []byte, perBody int, opts ...envOption) {
	env := newTestEnv(b, opts...)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = body("msg", i, perBody)
	}
	url := env.rest.URL + path + "?token=" + testSecret
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: ingestClients}}
	latencies := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for range ingestClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if !postAccepted(client, url, bodies[i], perBody) {
					failed.Add(1)
				}
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d bodies failed or were not wholly accepted", n, b.N)
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N*perBody)/elapsed.Seconds(), "reports/s")
	// CPU time per report (server, clients and store, all in this
	// process): on a shared machine it drifts far less than reports/s.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*perBody), "cpu-µs/report")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}

// postAccepted posts body and tells whether the webhook answered 200 with
// every one of its want reports accepted: a body answered 200 whose
// reports were refused would otherwise pass for ingested.
func postAccepted(client *http.Client, url string, body []byte, want int) bool {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var answer struct {
		Accepted int `json:"accepted"`
	}
	ok := resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&answer) == nil && answer.Accepted == want
	io.Copy(io.Discard, resp.Body) //nolint:errcheck // to reuse the connection
	return ok
}
