package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// openCoalescing opens a store on a fresh schema, and returns it with a
// function that blocks every insert into a table until the returned
// release is called (a transaction holding the table in SHARE mode): the
// flushes then stay busy and the calls queue behind them.
func openCoalescing(t *testing.T) (s *Store, block func(table string) (release func())) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, pgtest.FreshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, func(table string) func() {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{table}.Sanitize()+` IN SHARE MODE`); err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := tx.Commit(ctx); err != nil {
				t.Error(err)
			}
		}
	}
}

// coalescedReport is a delivery report of message msg to email.
func coalescedReport(msg, email string) store.Report {
	now := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	return store.Report{
		Key:          store.ReportKey{MessageID: msg, StatusID: 5, DoneAt: "2026-03-01T11:00:00.000+0000"},
		ConnectionID: "c", ProfileID: email, Email: email, Outcome: store.OutcomeEvent, EventName: "newsletter.hardbounce",
		ReceiveTime: now, EventTime: now,
	}
}

// busyFlushes makes every flush of q busy with a call, busy(i), in wg,
// while the table is blocked: one call at a time, each waited for until
// its flush has begun, so that no flush takes two.
func busyFlushes[T any](t *testing.T, q *ingestQueue[T], wg *sync.WaitGroup, busy func(i int) error) {
	t.Helper()
	base := q.flushes.Load()
	for i := range maxIngestFlushes {
		wg.Go(func() {
			if err := busy(i); err != nil {
				t.Error(err)
			}
		})
		deadline := time.Now().Add(10 * time.Second)
		for q.flushes.Load() < base+int64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("%d flushes begun, want %d", q.flushes.Load()-base, i+1)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// busyReport is a busy call of busyFlushes on the delivery reports.
func busyReport(s *Store) func(int) error {
	return func(i int) error {
		_, err := s.IngestReports(context.Background(), []store.Report{coalescedReport(fmt.Sprint("busy", i), "b@x")}, nil)
		return err
	}
}

// waitPending waits until n calls are queued behind the busy flushes.
func waitPending[T any](t *testing.T, q *ingestQueue[T], n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.mu.Lock()
		got := len(q.pending)
		q.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Calls arriving while the flushes are busy share one transaction, and
// each gets its own result: a report two calls carry is stored for
// exactly one of them, as it is between two calls that are not merged.
func TestConcurrentCallsShareATransaction(t *testing.T) {
	s, block := openCoalescing(t)
	release := block("delivery_reports")
	ctx := context.Background()
	var wg sync.WaitGroup
	busyFlushes(t, &s.deliveries, &wg, busyReport(s))
	const calls = 10
	results := make([]store.IngestResult, calls)
	for i := range calls {
		wg.Go(func() {
			// Every call stores its own report, and the shared one.
			var err error
			results[i], err = s.IngestReports(ctx, []store.Report{
				coalescedReport(fmt.Sprint("own", i), fmt.Sprintf("o%d@x", i)), coalescedReport("shared", "s@x"),
			}, nil)
			if err != nil {
				t.Error(err)
			}
		})
		waitPending(t, &s.deliveries, i+1)
	}
	before := s.deliveries.flushes.Load()
	release()
	wg.Wait()
	if got := s.deliveries.flushes.Load() - before; got != 1 {
		t.Errorf("the queued calls took %d transactions, want 1", got)
	}
	shared := 0
	for i, res := range results {
		if !res.Stored[0] || res.IDs[0] == 0 || res.Events != res.Accepted {
			t.Errorf("call %d: %+v, want its own report stored with its event", i, res)
		}
		if res.Stored[1] {
			shared++
		}
		if res.Accepted+res.Duplicates != 2 || res.Accepted != 1+boolInt(res.Stored[1]) {
			t.Errorf("call %d: accepted %d, duplicates %d for stored %v", i, res.Accepted, res.Duplicates, res.Stored)
		}
	}
	if shared != 1 {
		t.Errorf("the shared report was stored for %d calls, want 1", shared)
	}
	rs, err := s.ListReports(ctx, store.ReportQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if want := maxIngestFlushes + calls + 1; len(rs) != want {
		t.Errorf("%d reports stored, want %d", len(rs), want)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A caller that gives up while queued gets its context's error and its
// reports are never written.
func TestCallCancelledWhileQueued(t *testing.T) {
	s, block := openCoalescing(t)
	release := block("delivery_reports")
	ctx := context.Background()
	var wg sync.WaitGroup
	busyFlushes(t, &s.deliveries, &wg, busyReport(s))
	gaveUp, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := s.IngestReports(gaveUp, []store.Report{coalescedReport("gaveup", "g@x")}, nil)
		done <- err
	}()
	waitPending(t, &s.deliveries, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	release()
	wg.Wait()
	rs, err := s.ListReports(ctx, store.ReportQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Key.MessageID == "gaveup" {
			t.Errorf("the cancelled call's report was stored: %+v", r)
		}
	}
	if len(rs) != maxIngestFlushes {
		t.Errorf("%d reports stored, want the %d of the busy flushes", len(rs), maxIngestFlushes)
	}
}

// Platform-event calls merge as report calls do: those queued behind busy
// flushes share one transaction, an event two calls carry is stored for
// one, and each call counts its own events.
func TestConcurrentDomainEventCallsShareATransaction(t *testing.T) {
	s, block := openCoalescing(t)
	release := block("domain_events")
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	event := func(id, domain string) store.DomainEvent {
		return store.DomainEvent{EventID: id, Domain: domain, Type: "HIGH_BOUNCE_RATE_WARNING", Time: now, ReceiveTime: now,
			BounceRate: 3.4, Threshold: 3, Scope: "HOURLY", EventName: "domain.warning"}
	}
	var wg sync.WaitGroup
	busyFlushes(t, &s.domainEvents, &wg, func(i int) error {
		_, err := s.IngestDomainEvents(ctx, []store.DomainEvent{event(fmt.Sprint("busy", i), "busy.example")}, nil)
		return err
	})
	const calls = 6
	results := make([]store.IngestResult, calls)
	for i := range calls {
		wg.Go(func() {
			var err error
			results[i], err = s.IngestDomainEvents(ctx, []store.DomainEvent{
				event(fmt.Sprint("own", i), fmt.Sprintf("d%d.example", i%2)), event("shared", "shared.example"),
			}, nil)
			if err != nil {
				t.Error(err)
			}
		})
		waitPending(t, &s.domainEvents, i+1)
	}
	before := s.domainEvents.flushes.Load()
	release()
	wg.Wait()
	if got := s.domainEvents.flushes.Load() - before; got != 1 {
		t.Errorf("the queued calls took %d transactions, want 1", got)
	}
	shared := 0
	for i, res := range results {
		want := 1 + boolInt(res.Stored[1])
		if !res.Stored[0] || res.Accepted != want || res.Events != want || res.Duplicates != 2-want {
			t.Errorf("call %d: %+v, want its own event stored", i, res)
		}
		shared += boolInt(res.Stored[1])
	}
	if shared != 1 {
		t.Errorf("the shared event was stored for %d calls, want 1", shared)
	}
	for _, name := range []string{"d0.example", "d1.example", "shared.example"} {
		d, err := s.GetSendingDomain(ctx, name)
		if err != nil || d.ReportedBounceRate != 3.4 {
			t.Errorf("domain %s = %+v, %v, want its events applied", name, d, err)
		}
	}
}
