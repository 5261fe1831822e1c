package server_test

import (
	"bytes"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
)

// BenchmarkWebhookIngest posts 100-report bodies from 16 concurrent clients
// over loopback HTTP to a whole server, on the default SQLite store and on
// PostgreSQL; each 200 means the body is durable. One op is one body.
func BenchmarkWebhookIngest(b *testing.B) {
	b.Run("store=sqlite", func(b *testing.B) { benchWebhookIngest(b) })
	b.Run("store=postgres", func(b *testing.B) { benchWebhookIngest(b, withPostgres()) })
}

func benchWebhookIngest(b *testing.B, opts ...envOption) {
	const reportsPerBody, clients = 100, 16
	env := newTestEnv(b, opts...)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = sandbox.ExampleDeliveryReports("msg", i, reportsPerBody)
	}
	url := env.rest.URL + server.WebhookPath + "?token=" + testSecret
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	latencies := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(bodies[i]))
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d bodies failed", n, b.N)
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N*reportsPerBody)/elapsed.Seconds(), "reports/s")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}
