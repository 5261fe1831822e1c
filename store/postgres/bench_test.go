package postgres_test

import (
	"context"
	"fmt"
	"math/bits"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
)

// The benchmarks are those of store/sqlite, with the same workloads, so that
// the README can set the two engines side by side.

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

// benchBody makes n reports like a webhook body, each with a ~600-byte
// payload; one in eventEvery is a hard bounce, an event with 10 params, the
// others were delivered and make no event.
func benchBody(n, eventEvery int) []store.Report {
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

func openBench(b *testing.B) *postgres.Store {
	b.Helper()
	return open(b, freshSchema(b))
}

// eventShares are the workloads: every report an event (the worst case),
// and one in ten, closer to real traffic where most reports say delivered.
var eventShares = []struct {
	name  string
	every int
}{{"events=100%", 1}, {"events=10%", 10}}

// BenchmarkIngest100 is the webhook's load: many concurrent callers, each
// ingesting 100-report bodies and waiting for durability. Building the
// bodies is included, as the server's JSON decoding would be.
func BenchmarkIngest100(b *testing.B) {
	for _, share := range eventShares {
		b.Run(share.name, func(b *testing.B) {
			s := openBench(b)
			b.SetParallelism(16) // 32 callers on 2 cores: concurrent webhook requests
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := s.IngestReports(context.Background(), benchBody(100, share.every), nil)
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

// BenchmarkBatchInsertCeiling is the engine's own ceiling: one caller,
// 5,000-report bodies built outside the timer, one transaction each.
func BenchmarkBatchInsertCeiling(b *testing.B) {
	const n = 5000
	for _, share := range eventShares {
		b.Run(share.name, func(b *testing.B) {
			s := openBench(b)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				reports := benchBody(n, share.every)
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

// BenchmarkIngest100Replicas is BenchmarkIngest100 with the callers spread
// over two Stores, each with its own pool, as two replicas would be.
func BenchmarkIngest100Replicas(b *testing.B) {
	dsn := freshSchema(b)
	stores := []*postgres.Store{open(b, dsn), open(b, dsn)}
	var next atomic.Uint32
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		s := stores[next.Add(1)%2]
		for pb.Next() {
			res, err := s.IngestReports(context.Background(), benchBody(100, 10), nil)
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
