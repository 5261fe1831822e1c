package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
)

// BenchmarkWebhookIngest1 posts 1-report bodies from 32 concurrent clients
// to a whole server, then the same bodies from the same clients to an empty
// handler mounted on the same HTTP listener: the second is the listener's
// own ceiling (loopback, net/http, the clients), and "of-ceiling" is the
// share of it the webhook reaches. One op is one body to the webhook.
func BenchmarkWebhookIngest1(b *testing.B) {
	b.Run("store=sqlite", func(b *testing.B) { benchWebhookIngest1(b) })
	b.Run("store=postgres", func(b *testing.B) { benchWebhookIngest1(b, withPostgres()) })
}

func benchWebhookIngest1(b *testing.B, opts ...envOption) {
	const clients = 32
	env := newTestEnv(b, opts...)
	// One listener for both: the webhook under its path, and an empty
	// handler that reads the body and answers 200 with a small JSON body,
	// as the webhook's answer is read the same way.
	mux := http.NewServeMux()
	mux.HandleFunc("POST /empty", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // a benchmark's empty handler
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"accepted":1}`) //nolint:errcheck // likewise
	})
	mux.Handle("/", env.srv.Handler())
	lis := httptest.NewServer(mux)
	b.Cleanup(lis.Close)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = sandbox.ExampleDeliveryReports("msg1", i, 1)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	b.Cleanup(client.CloseIdleConnections)
	post := func(url string) time.Duration {
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= b.N {
						return
					}
					if !postAccepted(client, url, bodies[i], 1) {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := failed.Load(); n > 0 {
			b.Fatalf("%s: %d of %d bodies failed", url, n, b.N)
		}
		return time.Since(start)
	}
	b.ResetTimer()
	cpu0 := processCPU()
	elapsed := post(lis.URL + server.WebhookPath + "?token=" + testSecret)
	cpu1 := processCPU()
	b.StopTimer()
	ceiling := post(lis.URL + "/empty")
	cpu2 := processCPU()
	// CPU time per body (server, clients and store writer, all in this
	// process): on a shared machine it drifts far less than bodies/s.
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/body")
	b.ReportMetric(float64((cpu2-cpu1).Microseconds())/float64(b.N), "ceiling-cpu-µs/body")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "bodies/s")
	b.ReportMetric(float64(b.N)/ceiling.Seconds(), "ceiling-bodies/s")
	b.ReportMetric(ceiling.Seconds()/elapsed.Seconds(), "of-ceiling")
}

// processCPU is the CPU time, user and system, this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
