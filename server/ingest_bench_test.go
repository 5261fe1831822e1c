package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ibmail/ibmail/server"
)

// benchBody is a webhook body of n realistic reports (Infobip's documented
// fields, a bounce mix) with message ids unique to seq.
func benchBody(seq, n int) []byte {
	errs := []string{
		`{"id":6012,"name":"EC_HARD_BOUNCE","description":"Hard bounce","groupId":2,"groupName":"BOUNCED","permanent":true}`,
		`{"id":0,"name":"NO_ERROR","description":"No Error","groupId":0,"groupName":"OK","permanent":false}`,
		`{"id":6011,"name":"EC_SOFT_BOUNCE","description":"Soft bounce","groupId":2,"groupName":"BOUNCED","permanent":false}`,
		`{"id":6034,"name":"EC_SUPPRESSED_BOUNCE","description":"Suppressed","groupId":1,"groupName":"HANDSET_ERRORS","permanent":true}`,
	}
	var sb strings.Builder
	sb.WriteString(`{"results":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"entityId":"promotional-traffic-entity","applicationId":"marketing-automation-application",`+
			`"campaignReferenceId":"campaign-reference-123","bulkId":"bulk-%d","price":{"pricePerMessage":0,"currency":"UNKNOWN"},`+
			`"status":{"id":4,"groupId":2,"groupName":"UNDELIVERABLE","name":"UNDELIVERABLE_REJECTED_OPERATOR","description":"Message rejected"},`+
			`"error":%s,"messageId":"msg-%d-%d","doneAt":"2024-05-01T10:%02d:%02d.256+0000","smsCount":1,`+
			`"sentAt":"2024-05-01T09:59:57.628+0000","attemptCount":1,"timeToFirstAttempt":123,"sendingIp":"192.0.2.0",`+
			`"smtp":{"response":"550 5.1.1 mailbox unavailable"},"callbackData":"{\"profileId\":\"p-%d\"}","to":"user%d@example.com"}`,
			seq, errs[i%len(errs)], seq, i, i%60, seq%60, (seq*n+i)%50000, i)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

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
		bodies[i] = benchBody(i, reportsPerBody)
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
