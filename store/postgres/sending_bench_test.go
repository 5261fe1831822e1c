package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// bigSend makes a send of n recipients in batches of 1000, as the server
// builds them, with placeholders as a personalised newsletter has.
func bigSend(id string, n int) (store.Send, []store.Recipient, []store.Batch) {
	sn := store.Send{
		ID: id, SenderID: "sender", ConnectionID: "conn", CampaignID: "spring-2026",
		Subject: "Spring news", Content: make([]byte, 20_000), CreateTime: time.Now(),
	}
	rs := make([]store.Recipient, n)
	var bs []store.Batch
	for i := range rs {
		b := i / 1000
		if i%1000 == 0 {
			bs = append(bs, store.Batch{Seq: b, BulkID: fmt.Sprintf("%s-%d", id, b), State: store.BatchPending})
		}
		rs[i] = store.Recipient{
			Seq: i, ProfileID: fmt.Sprintf("profile-%08d", i), Email: fmt.Sprintf("someone.%08d@example.com", i),
			Placeholders: map[string]string{"firstName": "Someone", "plan": "premium"},
			State:        store.RecipientPending, BatchSeq: b, BulkID: bs[b].BulkID,
		}
	}
	return sn, rs, bs
}

var sendSeq atomic.Int64

// BenchmarkCreateSend100k is the biggest send: one transaction of 100,000
// recipients and 100 batches.
func BenchmarkCreateSend100k(b *testing.B) {
	s := openBench(b)
	const n = 100_000
	for range b.N {
		b.StopTimer()
		sn, rs, bs := bigSend(fmt.Sprint("send-", sendSeq.Add(1)), n)
		b.StartTimer()
		if _, _, err := s.CreateSend(context.Background(), sn, rs, bs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "recipients/s")
}

// BenchmarkDispatch100k claims and completes every batch of a 100,000
// recipient send, as dispatchers would, then reads its counts.
func BenchmarkDispatch100k(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		id := fmt.Sprint("send-", sendSeq.Add(1))
		sn, rs, bs := bigSend(id, 100_000)
		if _, _, err := s.CreateSend(ctx, sn, rs, bs); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for {
			cs, err := s.ClaimBatches(ctx, "d", time.Now(), time.Minute, 4)
			if err != nil {
				b.Fatal(err)
			}
			if len(cs) == 0 {
				break
			}
			for _, c := range cs {
				out := make([]store.RecipientOutcome, len(c.Recipients))
				for i, r := range c.Recipients {
					out[i] = store.RecipientOutcome{Seq: r.Seq, State: store.RecipientAccepted, MessageID: fmt.Sprintf("%s-m%d", id, r.Seq)}
				}
				if err := s.CompleteBatch(ctx, "d", c.SendID, c.Seq, out); err != nil {
					b.Fatal(err)
				}
			}
		}
		got, err := s.GetSend(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if got.Counts[store.RecipientAccepted] != 100_000 || got.DoneTime.IsZero() {
			b.Fatalf("after dispatch: counts %v, done %v", got.Counts, got.DoneTime)
		}
	}
}

// BenchmarkRecipientsByMessageID is the webhook's lookup: a body's worth
// of message ids among 100,000 recipients.
func BenchmarkRecipientsByMessageID(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	sn, rs, bs := bigSend("send", 100_000)
	for i := range rs {
		rs[i].State, rs[i].BatchSeq, rs[i].MessageID = store.RecipientAccepted, -1, fmt.Sprintf("msg-%08d", i)
	}
	if _, _, err := s.CreateSend(ctx, sn, rs, bs[:0]); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 2000)
	b.ResetTimer()
	for i := range b.N {
		for j := range ids {
			ids[j] = fmt.Sprintf("msg-%08d", (i*7919+j*104729)%100_000)
		}
		got, err := s.RecipientsByMessageID(ctx, ids)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			b.Fatal("no recipient found")
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(ids))/b.Elapsed().Seconds(), "ids/s")
}

// BenchmarkSuppressedAmong100k checks a 100,000-recipient send against a
// list of 10,000 suppressions.
func BenchmarkSuppressedAmong100k(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	var reports []store.Report
	for i := range 10_000 {
		reports = append(reports, store.Report{
			Key:     store.ReportKey{MessageID: fmt.Sprint("hb-", i), DoneAt: "2026-03-01T11:00:00.000+0000"},
			Email:   fmt.Sprintf("someone.%08d@example.com", i*10),
			Outcome: store.OutcomeEvent, EventName: "newsletter.hardbounce", Rule: "hard", Suppress: true,
		})
	}
	if _, err := s.IngestReports(ctx, reports, nil); err != nil {
		b.Fatal(err)
	}
	_, rs, _ := bigSend("send", 100_000)
	emails := make([]string, len(rs))
	for i, r := range rs {
		emails[i] = r.Email
	}
	b.ResetTimer()
	for range b.N {
		got, err := s.SuppressedAmong(ctx, emails)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != 10_000 {
			b.Fatalf("suppressed = %d, want 10000", len(got))
		}
	}
}

// BenchmarkIngest100Sending is BenchmarkIngest100 for reports about this
// server's sends: each event also updates its recipient's last event, and
// suppresses its address.
func BenchmarkIngest100Sending(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	sn, rs, bs := bigSend("send", 100_000)
	if _, _, err := s.CreateSend(ctx, sn, rs, bs); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := benchBody(100, 1)
			for i := range body {
				seq := int(scramble(uint64(i)+uint64(sendSeq.Add(1))) % 100_000)
				body[i].Recipient = &store.RecipientRef{SendID: "send", Seq: seq}
				body[i].Suppress = true
			}
			res, err := s.IngestReports(ctx, body, nil)
			if err != nil {
				b.Error(err)
				return
			}
			if res.Accepted != 100 {
				b.Errorf("accepted %d of 100", res.Accepted)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "reports/s")
}
