package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/sqlite"
	"github.com/ibmail/ibmail/store/storetest"
)

// The engine benchmarks every store runs (store/storetest/bench.go), on a
// fresh database file.

func openBench(b *testing.B) store.Store {
	b.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "ibmail.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkIngest100(b *testing.B)             { storetest.BenchIngest100(b, openBench) }
func BenchmarkBatchInsertCeiling(b *testing.B)    { storetest.BenchBatchInsertCeiling(b, openBench) }
func BenchmarkCreateSend100k(b *testing.B)        { storetest.BenchCreateSend100k(b, openBench) }
func BenchmarkDispatch100k(b *testing.B)          { storetest.BenchDispatch100k(b, openBench) }
func BenchmarkRecipientsByMessageID(b *testing.B) { storetest.BenchRecipientsByMessageID(b, openBench) }
func BenchmarkSuppressedAmong100k(b *testing.B)   { storetest.BenchSuppressedAmong100k(b, openBench) }
func BenchmarkIngest100Sending(b *testing.B)      { storetest.BenchIngest100Sending(b, openBench) }
