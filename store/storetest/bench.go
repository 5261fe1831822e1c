package storetest

import (
	"context"
	"fmt"
	"math/bits"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// The benchmarks every engine runs, with the same workloads, so that the
// README can set the engines side by side: each engine's test package has a
// BenchmarkX calling BenchX with its own opener.

// benchSeq numbers generated reports; scrambled, it gives message and
// profile ids spread over the key space as Infobip's are, so that the
// unique and profile indexes see random inserts, not appends.
var benchSeq atomic.Uint64

func scramble(n uint64) uint64 {
	n ^= n >> 33
	n *= 0xff51afd7ed558ccd
	n ^= n >> 33
	n *= 0xc4ceb9fe1a85ec53
	return n ^ n>>33
}

// BenchReports makes n reports like a webhook body, each with a ~600-byte
// payload; one in eventEvery is a hard bounce, an event with 10 params, the
// others were delivered and make no event.
func BenchReports(n, eventEvery int) []store.Report {
	reports := make([]store.Report, n)
	now := time.Now().UTC()
	done := now.Format("2006-01-02T15:04:05.000-0700")
	for i := range reports {
		seq := benchSeq.Add(1)
		h := scramble(seq)
		msg := fmt.Sprintf("%016x-%08x", h, bits.RotateLeft64(h, 17)&0xffffffff)
		profile := "prof-" + strconv.FormatUint(scramble(h)%1_000_000, 36)
		email := profile + "@example.com"
		payload := `{"bulkId":"bulk-` + strconv.FormatUint(seq/100, 10) + `","messageId":"` + msg +
			`","to":"` + email + `","sentAt":"` + done + `","doneAt":"` + done +
			`","messageCount":1,"price":{"pricePerMessage":0,"currency":"EUR"},` +
			`"status":{"groupId":5,"groupName":"REJECTED","id":6,"name":"REJECTED_NETWORK",` +
			`"description":"Message rejected by the recipient's mail server","action":"none"},` +
			`"error":{"groupId":1,"groupName":"HANDSET_ERRORS","id":5002,"name":"EC_MAILBOX_UNAVAILABLE",` +
			`"description":"550 5.1.1 The email account that you tried to reach does not exist",` +
			`"permanent":true},"channel":"EMAIL","callbackData":"campaign=spring-2026&segment=active"}`
		reports[i] = store.Report{
			Key:          store.ReportKey{MessageID: msg, StatusID: 6, ErrorID: 5002, DoneAt: done},
			ConnectionID: "conn-main",
			ProfileID:    profile,
			Email:        email,
			Outcome:      store.OutcomeEvent,
			EventName:    "newsletter.hardbounce",
			Rule:         "error-5002-permanent",
			EventTime:    now,
			ReceiveTime:  now,
			Payload:      []byte(payload),
		}
		if seq%uint64(eventEvery) != 0 {
			reports[i].Outcome, reports[i].EventName, reports[i].Rule = store.OutcomeNoError, "", ""
			continue
		}
		reports[i].Params = map[string]string{
			"messageId":   msg,
			"bulkId":      "bulk-" + strconv.FormatUint(seq/100, 10),
			"statusId":    "6",
			"statusName":  "REJECTED_NETWORK",
			"errorId":     "5002",
			"errorName":   "EC_MAILBOX_UNAVAILABLE",
			"description": "550 5.1.1 The email account that you tried to reach does not exist",
			"permanent":   "true",
			"doneAt":      done,
			"campaign":    "spring-2026",
		}
	}
	return reports
}

// eventShares are the workloads: every report an event (the worst case),
// and one in ten, closer to real traffic where most reports say delivered.
var eventShares = []struct {
	name  string
	every int
}{{"events=100%", 1}, {"events=10%", 10}}

// BenchIngest100 is the webhook's load: many concurrent callers, each
// ingesting 100-report bodies and waiting for durability. Building the
// bodies is included, as the server's JSON decoding would be.
func BenchIngest100(b *testing.B, open func(*testing.B) store.Store) {
	for _, share := range eventShares {
		b.Run(share.name, func(b *testing.B) {
			s := open(b)
			b.SetParallelism(16) // 32 callers on 2 cores: concurrent webhook requests
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := s.IngestReports(context.Background(), BenchReports(100, share.every), nil)
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
		})
	}
}

// BenchBatchInsertCeiling is the engine's own ceiling: one caller,
// 5,000-report bodies built outside the timer, one transaction each.
func BenchBatchInsertCeiling(b *testing.B, open func(*testing.B) store.Store) {
	const n = 5000
	for _, share := range eventShares {
		b.Run(share.name, func(b *testing.B) {
			s := open(b)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				reports := BenchReports(n, share.every)
				b.StartTimer()
				res, err := s.IngestReports(context.Background(), reports, nil)
				if err != nil {
					b.Fatal(err)
				}
				if res.Accepted != n {
					b.Fatalf("accepted %d of %d", res.Accepted, n)
				}
			}
			b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "reports/s")
		})
	}
}

// BigSend makes a send of n recipients in batches of 1000, as the server
// builds them, with placeholders as a personalised newsletter has.
func BigSend(id string, n int) (store.Send, []store.Recipient, []store.Batch) {
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

// BenchCreateSend100k is the biggest send: one transaction of 100,000
// recipients and 100 batches.
func BenchCreateSend100k(b *testing.B, open func(*testing.B) store.Store) {
	s := open(b)
	const n = 100_000
	for range b.N {
		b.StopTimer()
		sn, rs, bs := BigSend(fmt.Sprint("send-", sendSeq.Add(1)), n)
		b.StartTimer()
		if _, _, err := s.CreateSend(context.Background(), sn, rs, bs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "recipients/s")
}

// BenchDispatch100k claims and completes every batch of a 100,000
// recipient send, as dispatchers would, then reads its counts.
func BenchDispatch100k(b *testing.B, open func(*testing.B) store.Store) {
	s := open(b)
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		id := fmt.Sprint("send-", sendSeq.Add(1))
		sn, rs, bs := BigSend(id, 100_000)
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

// BenchRecipientsByMessageID is the webhook's lookup: a body's worth
// of message ids among 100,000 recipients.
func BenchRecipientsByMessageID(b *testing.B, open func(*testing.B) store.Store) {
	s := open(b)
	ctx := context.Background()
	sn, rs, bs := BigSend("send", 100_000)
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
		got, err := s.RecipientsByMessageID(ctx, "", ids)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			b.Fatal("no recipient found")
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(ids))/b.Elapsed().Seconds(), "ids/s")
}

// BenchSuppressedAmong100k checks a 100,000-recipient send against a
// list of 10,000 suppressions.
func BenchSuppressedAmong100k(b *testing.B, open func(*testing.B) store.Store) {
	s := open(b)
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
	_, rs, _ := BigSend("send", 100_000)
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

// BenchIngest100Sending is BenchmarkIngest100 for reports about this
// server's sends: each event also updates its recipient's last event, and
// suppresses its address.
func BenchIngest100Sending(b *testing.B, open func(*testing.B) store.Store) {
	s := open(b)
	ctx := context.Background()
	sn, rs, bs := BigSend("send", 100_000)
	if _, _, err := s.CreateSend(ctx, sn, rs, bs); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := BenchReports(100, 1)
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
