package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
	"github.com/ibmail/ibmail/store/storetest"
)

// The engine benchmarks every store runs (store/storetest/bench.go), each
// on a fresh schema, so that docs/benchmarks.md can set the engines side by side.

func openBench(b *testing.B) store.Store {
	b.Helper()
	return open(b, freshSchema(b))
}

func BenchmarkIngest100(b *testing.B)             { storetest.BenchIngest100(b, openBench) }
func BenchmarkBatchInsertCeiling(b *testing.B)    { storetest.BenchBatchInsertCeiling(b, openBench) }
func BenchmarkCreateSend100k(b *testing.B)        { storetest.BenchCreateSend100k(b, openBench) }
func BenchmarkDispatch100k(b *testing.B)          { storetest.BenchDispatch100k(b, openBench) }
func BenchmarkRecipientsByMessageID(b *testing.B) { storetest.BenchRecipientsByMessageID(b, openBench) }
func BenchmarkSuppressedAmong100k(b *testing.B)   { storetest.BenchSuppressedAmong100k(b, openBench) }
func BenchmarkIngest100Sending(b *testing.B)      { storetest.BenchIngest100Sending(b, openBench) }

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
			res, err := s.IngestReports(context.Background(), storetest.BenchReports(100, 10), nil)
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
