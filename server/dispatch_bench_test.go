package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/dispatch"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/infobip"
	"github.com/ibmail/ibmail/sandbox"
)

// benchRecipientsPerSend is the size of one benchmark send: 10 Infobip
// requests of 1000.
const benchRecipientsPerSend = 10000

// BenchmarkDispatch measures recipients per second from CreateSend to every
// recipient accepted, through the dispatcher, the Infobip client and an
// in-process sandbox (which posts its reports back to the webhook, as
// Infobip would), on the default SQLite store and on PostgreSQL. One op is
// one 10,000-recipient send. It also reports the sandbox's ceiling
// (sandboxCeiling), measured in the same run just before the sends, and
// the ratio of the two: the dispatch figure.
func BenchmarkDispatch(b *testing.B) {
	b.Run("store=sqlite", func(b *testing.B) { benchDispatch(b) })
	b.Run("store=postgres", func(b *testing.B) { benchDispatch(b, withPostgres()) })
}

func benchDispatch(b *testing.B, opts ...envOption) {
	cpu0 := processCPU()
	ceiling := sandboxCeiling(b, ceilingRequests)
	ceilingCPU := processCPU() - cpu0
	sb := sandbox.New(sandbox.Options{APIKey: sandboxKey, Seed: 1, MaxLogs: 1})
	sbSrv := httptest.NewServer(sb)
	defer func() { sbSrv.Close(); sb.Close() }()
	env := newTestEnv(b, append(opts, withAllowedBaseURL(sbSrv.URL), withDispatcher(func(o *dispatch.Options) {
		o.Defaults = dispatch.Limits{RequestsPerSecond: 2000, Concurrency: 8}
		o.Poll = 5 * time.Millisecond
	}))...)
	ctx := context.Background()
	if _, err := env.conns.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{Id: "c1", ApiKey: sandboxKey, BaseUrl: sbSrv.URL}}); err != nil {
		b.Fatal(err)
	}
	if _, err := env.senders.CreateSender(ctx, &ibmailv1.CreateSenderRequest{Sender: &ibmailv1.Sender{Id: "s1", ConnectionId: "c1", FromAddress: "news@example.com"}}); err != nil {
		b.Fatal(err)
	}
	reqs := make([]*ibmailv1.CreateSendRequest, b.N)
	for i := range reqs {
		rs := make([]*ibmailv1.RecipientInput, benchRecipientsPerSend)
		for j := range rs {
			rs[j] = &ibmailv1.RecipientInput{ProfileId: fmt.Sprintf("p%d-%d", i, j), Email: fmt.Sprintf("u%d-%d@example.com", i, j)}
		}
		reqs[i] = &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: "Hello", Html: "<p>Hi</p>", Recipients: rs}
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for i := range b.N {
		resp, err := env.sends.CreateSend(ctx, reqs[i])
		if err != nil {
			b.Fatal(err)
		}
		for {
			got, err := env.sends.GetSend(ctx, &ibmailv1.GetSendRequest{SendId: resp.GetSend().GetId()})
			if err != nil {
				b.Fatal(err)
			}
			if got.GetSend().GetState() == ibmailv1.SendState_SEND_STATE_DONE {
				if got.GetSend().GetAcceptedCount() != benchRecipientsPerSend {
					b.Fatalf("send finished with %v", got.GetSend())
				}
				break
			}
			time.Sleep(25 * time.Millisecond) // GetSend counts 10k rows: poll gently
		}
	}
	b.StopTimer()
	recipients := float64(b.N * benchRecipientsPerSend)
	rate := recipients / time.Since(start).Seconds()
	b.ReportMetric(rate, "recipients/s")
	b.ReportMetric(ceiling, "ceiling-recipients/s")
	b.ReportMetric(rate/ceiling, "ratio")
	// The CPU (the whole process: ibmail, the sandbox, the clients) a
	// recipient costs in each: on two busy cores, the ratio can be no
	// more than theirs.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/recipients, "cpu-µs/recipient")
	b.ReportMetric(float64(ceilingCPU.Microseconds())/float64(ceilingRequests*1000), "ceiling-cpu-µs/recipient")
}

// ceilingRequests is how many 1000-recipient requests one measure of the
// sandbox's ceiling takes: a few seconds on a busy 2-core machine, long
// enough to be stable (20 requests, about 110 ms, were not).
const ceilingRequests = 250

// BenchmarkSandboxCeiling measures what the sandbox alone takes: 1000-
// recipient sends from 8 concurrent Infobip clients, reports posted to a
// receiver that discards them. One op is ceilingRequests requests.
func BenchmarkSandboxCeiling(b *testing.B) {
	var rate float64
	for range b.N {
		rate = sandboxCeiling(b, ceilingRequests)
	}
	b.ReportMetric(rate, "recipients/s")
}

// sandboxCeiling sends requests 1000-recipient requests to a fresh sandbox
// from 8 clients (the dispatcher's concurrency in benchDispatch) and gives
// the recipients per second.
func sandboxCeiling(b *testing.B, requests int) float64 {
	b.Helper()
	sink := httptest.NewServer(nil)
	defer sink.Close()
	sb := sandbox.New(sandbox.Options{APIKey: sandboxKey, Seed: 1, MaxLogs: 1})
	sbSrv := httptest.NewServer(sb)
	defer func() { sbSrv.Close(); sb.Close() }()
	client, err := infobip.New(infobip.Config{BaseURL: sbSrv.URL, APIKey: sandboxKey})
	if err != nil {
		b.Fatal(err)
	}
	to := make([]infobip.Recipient, 1000)
	for i := range to {
		to[i] = infobip.Recipient{Email: fmt.Sprintf("u%d@example.com", i)}
	}
	var wg sync.WaitGroup
	next := make(chan int)
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for i := range next {
				_, err := client.Send(context.Background(), infobip.SendRequest{From: "news@example.com", Subject: "Hello", HTML: "<p>Hi</p>",
					To: to, BulkID: fmt.Sprintf("bench-%d", i), NotifyURL: sink.URL, NotifyContentType: "application/json"})
				if err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range requests {
		next <- i
	}
	close(next)
	wg.Wait()
	return float64(requests*len(to)) / time.Since(start).Seconds()
}
