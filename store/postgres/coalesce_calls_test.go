package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// The ingest paths a merged transaction can take: by the statement, by
// COPY, and by COPY that meets a stored report and falls back on the
// statement (errKeyRace).
var mergePaths = []struct {
	name    string
	copyMin int
	race    bool // a report of the first call is stored before
}{
	{"statement", math.MaxInt, false},
	{"copy", 1, false},
	{"copy falling back", 1, true},
}

// queueCalls makes the flushes busy, queues calls one after the other
// (so that the merge is in their order), releases the flushes and returns
// each call's result and error, and how many transactions the queued
// calls took.
func queueCalls(t *testing.T, s *Store, block func(string) func(), calls [][]store.Report) ([]store.IngestResult, []error, int64) {
	t.Helper()
	release := block("delivery_reports")
	var wg sync.WaitGroup
	busyFlushes(t, &s.deliveries, &wg, busyReport(s))
	results := make([]store.IngestResult, len(calls))
	errs := make([]error, len(calls))
	for i, c := range calls {
		wg.Go(func() { results[i], errs[i] = s.IngestReports(context.Background(), c, nil) })
		waitPending(t, &s.deliveries, i+1)
	}
	before := s.deliveries.flushes.Load()
	release()
	wg.Wait()
	return results, errs, s.deliveries.flushes.Load() - before
}

// softBounceCounts is what soft_bounce_counts holds: the number of
// bounces of each address counted.
func softBounceCounts(t *testing.T, s *Store) map[string]int {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT email, cardinality(event_ids) FROM soft_bounce_counts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var e string
		var n int
		if err := rows.Scan(&e, &n); err != nil {
			t.Fatal(err)
		}
		out[e] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Merged calls' soft-bounce work is that of the calls one after the other
// in the merge's order: a delivery in a later call clears the count a
// bounce of an earlier call made, and a bounce of a later call counts
// after an earlier call's delivery. Call A delivers to y and bounces x,
// call B delivers to x and bounces y: A then B leaves y counted, not x
// (B then A would leave x, not y); never both.
func TestMergedSoftBounceWorkInCallOrder(t *testing.T) {
	limit := store.SoftBounceLimit{Limit: 3, Window: time.Hour, Reason: "soft-bounce limit"}
	delivery := func(msg, email string) store.Report {
		r := coalescedReport(msg, email)
		r.Outcome, r.EventName, r.SoftBounce = store.OutcomeNoError, "", store.SoftBounceResets
		return r
	}
	bounce := func(msg, email string) store.Report {
		r := coalescedReport(msg, email)
		r.EventName, r.SoftBounce, r.SoftBounceLimit = "newsletter.softbounce", store.SoftBounceCounted, limit
		return r
	}
	for _, p := range mergePaths {
		t.Run(p.name, func(t *testing.T) {
			s, block := openCoalescing(t)
			s.copyMin = p.copyMin
			a := []store.Report{delivery("a-deliver-y", "y@x"), bounce("a-bounce-x", "x@x")}
			b := []store.Report{delivery("b-deliver-x", "x@x"), bounce("b-bounce-y", "y@x")}
			if p.race {
				// Stored already (and delivered to an address with no
				// count): the merged COPY meets it.
				pre := delivery("pre", "p@x")
				a = append([]store.Report{pre}, a...)
				if _, err := s.IngestReports(context.Background(), []store.Report{pre}, nil); err != nil {
					t.Fatal(err)
				}
			}
			_, errs, n := queueCalls(t, s, block, [][]store.Report{a, b})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			if n != 1 {
				t.Fatalf("the calls took %d transactions, want 1 (merged)", n)
			}
			if got, want := softBounceCounts(t, s), map[string]int{"y@x": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("counts %v, want %v (call A, then call B)", got, want)
			}
		})
	}
}

// A call whose reports the database refuses makes the merged transaction
// fail: it alone gets an error, and stores nothing; the calls merged with
// it are stored as if it had not been there, by every path.
func TestMergedCallRefusedAlone(t *testing.T) {
	bads := []struct {
		name  string
		spoil func(r *store.Report)
	}{
		{"NUL in email", func(r *store.Report) { r.Email = "a\x00b@x" }},
		{"invalid UTF-8 in rule", func(r *store.Report) { r.Rule = "\xff\xfe" }},
		{"invalid params", func(r *store.Report) { r.Params = map[string]string{"k": "\x00"} }},
	}
	for _, p := range mergePaths {
		for _, bad := range bads {
			t.Run(p.name+"/"+bad.name, func(t *testing.T) {
				s, block := openCoalescing(t)
				s.copyMin = p.copyMin
				var calls [][]store.Report
				for i := range 3 {
					var c []store.Report
					for j := range 6 {
						c = append(c, coalescedReport(fmt.Sprintf("c%d-%d", i, j), fmt.Sprintf("c%d@x", i)))
					}
					// Every call also carries one report of the call
					// before: stored once, for the first.
					if i > 0 {
						c = append(c, coalescedReport(fmt.Sprintf("c%d-0", i-1), "shared@x"))
					}
					calls = append(calls, c)
				}
				if p.race {
					if _, err := s.IngestReports(context.Background(), calls[0][1:2], nil); err != nil {
						t.Fatal(err)
					}
				}
				bad.spoil(&calls[1][3])
				results, errs, _ := queueCalls(t, s, block, calls)
				for i, err := range errs {
					if (err != nil) != (i == 1) {
						t.Errorf("call %d: err %v, want an error for call 1 alone", i, err)
					}
				}
				if errs[1] != nil && errors.Is(errs[1], store.ErrUnavailable) {
					t.Errorf("call 1: %v, want an error about the data, not ErrUnavailable", errs[1])
				}
				wantStored := [][]bool{
					{true, !p.race, true, true, true, true},
					nil,
					// c1-0, which call 2 carries too, was never stored.
					{true, true, true, true, true, true, true},
				}
				for _, i := range []int{0, 2} {
					if fmt.Sprint(results[i].Stored) != fmt.Sprint(wantStored[i]) {
						t.Errorf("call %d: stored %v, want %v", i, results[i].Stored, wantStored[i])
					}
					accepted := 0
					for j, ok := range wantStored[i] {
						if ok {
							accepted++
						}
						if (results[i].IDs[j] != 0) != ok {
							t.Errorf("call %d report %d: id %d, stored %v", i, j, results[i].IDs[j], ok)
						}
					}
					if results[i].Accepted != accepted || results[i].Events != accepted || results[i].Duplicates != len(wantStored[i])-accepted {
						t.Errorf("call %d: %+v, want %d accepted", i, results[i], accepted)
					}
				}
				rs, err := s.ListReports(context.Background(), store.ReportQuery{Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				if want := maxIngestFlushes + 6 + 7; len(rs) != want {
					t.Errorf("%d reports stored, want %d", len(rs), want)
				}
				for _, r := range rs {
					if r.Key.MessageID[:2] == "c1" && r.Key.MessageID != "c1-0" {
						t.Errorf("the refused call's report %s was stored", r.Key.MessageID)
					}
				}
			})
		}
	}
}

// Store.Close while calls are queued: the calls in flight finish, the
// queued ones get an error, none hangs.
func TestCloseWhileQueued(t *testing.T) {
	s, block := openCoalescing(t)
	release := block("delivery_reports")
	var wg sync.WaitGroup
	busyFlushes(t, &s.deliveries, &wg, busyReport(s))
	const calls = 3
	errs := make([]error, calls)
	var queued sync.WaitGroup
	for i := range calls {
		queued.Go(func() {
			_, errs[i] = s.IngestReports(context.Background(), []store.Report{coalescedReport(fmt.Sprint("q", i), "q@x")}, nil)
		})
		waitPending(t, &s.deliveries, i+1)
	}
	// Both busy flushes hold a connection (the blocker holds one more):
	// one still connecting when the pool closes would fail, rightly, but
	// this test is about the queued calls.
	for s.pool.Stat().AcquiredConns() < 1+maxIngestFlushes {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	// Close waits for the connections in use, the blocker's among them.
	for !s.closed.Load() {
		time.Sleep(time.Millisecond)
	}
	release()
	wg.Wait()
	queued.Wait()
	<-closed
	for i, err := range errs {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("queued call %d: %v, want ErrUnavailable", i, err)
		}
	}
}

// A caller whose context ends once its call is taken waits for the
// commit and is told the truth: stored. So is one whose deadline passes
// while its call, merged with one of a later deadline, is being written.
func TestCallEndedAfterTaken(t *testing.T) {
	s, block := openCoalescing(t)
	ctx := context.Background()
	release := block("delivery_reports")
	cancelled, cancel := context.WithCancel(ctx)
	type result struct {
		res store.IngestResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.IngestReports(cancelled, []store.Report{coalescedReport("taken", "t@x")}, nil)
		done <- result{res, err}
	}()
	for s.deliveries.flushes.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	// The flush has the call and waits on the lock.
	cancel()
	release()
	if r := <-done; r.err != nil || !r.res.Stored[0] {
		t.Errorf("cancelled after taken: %+v, %v; want stored", r.res, r.err)
	}

	// Two calls that suppress, merged, held up by a lock on the
	// suppressions only once taken (on a store of their own, for
	// busyFlushes to count its flushes).
	// The lock is that of m0@x's suppression row, which the merged
	// call's suppression waits on (ON CONFLICT locks the row it meets); a
	// table lock would hold up the busy flushes too.
	s, block = openCoalescing(t)
	pre := coalescedReport("pre", "m0@x")
	pre.Suppress = true
	if _, err := s.IngestReports(ctx, []store.Report{pre}, nil); err != nil {
		t.Fatal(err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM suppressions WHERE email = 'm0@x' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	release = block("delivery_reports")
	var wg sync.WaitGroup
	busyFlushes(t, &s.deliveries, &wg, busyReport(s))
	short, cancelShort := context.WithTimeout(ctx, time.Hour)
	defer cancelShort()
	long, cancelLong := context.WithTimeout(ctx, 2*time.Hour)
	defer cancelLong()
	results := make([]result, 2)
	for i, c := range []context.Context{short, long} {
		wg.Go(func() {
			r := coalescedReport(fmt.Sprint("merged", i), fmt.Sprintf("m%d@x", i))
			r.Suppress = true
			res, err := s.IngestReports(c, []store.Report{r}, nil)
			results[i] = result{res, err}
		})
		waitPending(t, &s.deliveries, i+1)
	}
	before := s.deliveries.flushes.Load()
	release()
	// Taken, and so no longer pending, the merged call waits on the
	// suppressions' lock: the short caller gives up.
	waitPending0 := func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if time.Now().After(deadline) {
				t.Fatal("the merged call was never taken")
			}
			s.deliveries.mu.Lock()
			n := len(s.deliveries.pending)
			s.deliveries.mu.Unlock()
			if n == 0 && s.deliveries.flushes.Load() > before {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitPending0()
	cancelShort()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil || !r.res.Stored[0] {
			t.Errorf("merged call %d: %+v, %v; want stored", i, r.res, r.err)
		}
	}
	ss, err := s.SuppressedAmong(ctx, []string{"m0@x", "m1@x"})
	if err != nil || len(ss) != 2 {
		t.Errorf("suppressed %v, %v; want both", ss, err)
	}
}
