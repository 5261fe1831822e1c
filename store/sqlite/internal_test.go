package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/storetest"
)

func openInternal(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "ibmail.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The profile-first segmentation plan only runs on big windows; forcing it
// on the conformance suite's small data checks it answers the same.
func TestConformanceProfileFirstPlan(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openInternal(t)
		s.windowProbeCap = 0
		return s
	})
}

func TestPragmas(t *testing.T) {
	s := openInternal(t)
	tests := []struct {
		db     string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "2"}, // FULL
		{"writer", "foreign_keys", "1"},
		{"writer", "wal_autocheckpoint", fmt.Sprint(walAutoCheckpoint)},
		{"reader", "query_only", "1"},
		{"reader", "journal_mode", "wal"},
	}
	for _, tt := range tests {
		db := s.writeDB
		if tt.db == "reader" {
			db = s.readDB
		}
		var got string
		if err := db.QueryRow("PRAGMA " + tt.pragma).Scan(&got); err != nil {
			t.Fatalf("%s PRAGMA %s: %v", tt.db, tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("%s PRAGMA %s = %s, want %s", tt.db, tt.pragma, got, tt.want)
		}
	}
}

func reports(prefix string, n int) []store.Report {
	out := make([]store.Report, n)
	for i := range out {
		msg := fmt.Sprintf("%s-%d", prefix, i)
		out[i] = store.Report{
			Key:       store.ReportKey{MessageID: msg, DoneAt: "2026-03-01T11:00:00.000+0000"},
			ProfileID: "p-" + prefix, Outcome: store.OutcomeEvent, EventName: "hb",
			Params: map[string]string{"m": msg},
		}
	}
	return out
}

// blockWriter makes the writer's next transaction wait until the returned
// function is called, so that tests can queue requests behind it.
func blockWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.w.fault = func(r *request) error {
		if len(r.reports) > 0 && r.reports[0].Key.MessageID == "block-0" {
			once.Do(func() { close(entered) })
			<-gate
		}
		if len(r.reports) > 0 && strings.HasPrefix(r.reports[0].Key.MessageID, "bad") {
			return errors.New("injected failure")
		}
		return nil
	}
	go s.IngestReports(context.Background(), reports("block", 1), nil)
	<-entered
	return func() { close(gate) }
}

func (w *writer) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.w.queued() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("queue never reached %d requests", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A request that fails inside a shared transaction must fail alone, with
// its rejected payloads: the others in the batch are committed and acked.
func TestBadRequestFailsAlone(t *testing.T) {
	s := openInternal(t)
	release := blockWriter(t, s)
	type result struct {
		res store.IngestResult
		err error
	}
	names := []string{"good1", "bad", "good2"}
	results := make([]chan result, len(names))
	for i, name := range names {
		results[i] = make(chan result, 1)
		go func() {
			res, err := s.IngestReports(context.Background(), reports(name, 3),
				[]store.RejectedPayload{{Reason: name}})
			results[i] <- result{res, err}
		}()
		waitQueued(t, s, i+1)
	}
	release()
	for i, name := range names {
		got := <-results[i]
		if name == "bad" {
			if got.err == nil {
				t.Errorf("%s: no error", name)
			}
			continue
		}
		if got.err != nil || got.res.Accepted != 3 {
			t.Errorf("%s: %+v, %v; want 3 accepted", name, got.res, got.err)
		}
	}
	rs, err := s.ListReports(context.Background(), store.ReportQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1+3+3 {
		t.Errorf("reports = %d, want 7 (block, good1, good2)", len(rs))
	}
	for _, r := range rs {
		if strings.HasPrefix(r.Key.MessageID, "bad") {
			t.Errorf("report %s of the failed request was stored", r.Key.MessageID)
		}
	}
	ps, err := s.ListRejectedPayloads(context.Background(), store.RejectedQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, p := range ps {
		reasons = append(reasons, p.Reason)
	}
	if got, want := strings.Join(reasons, ","), "good2,good1"; got != want {
		t.Errorf("rejected payloads = %s, want %s", got, want)
	}
}

// Requests queued together share one transaction: that is the point.
func TestQueuedRequestsShareATransaction(t *testing.T) {
	s := openInternal(t)
	release := blockWriter(t, s)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if _, err := s.IngestReports(context.Background(), reports(fmt.Sprint("c", i), 10), nil); err != nil {
				t.Error(err)
			}
		})
		waitQueued(t, s, i+1)
	}
	before := s.w.commits.Load()
	release()
	wg.Wait()
	// The blocked transaction, then one for the ten queued requests.
	if got := s.w.commits.Load() - before; got != 2 {
		t.Errorf("transactions = %d, want 2", got)
	}
}

// A caller that gives up while queued gets its context's error and its
// work is never written; one whose work was taken waits for the commit.
func TestCancelWhileQueued(t *testing.T) {
	s := openInternal(t)
	release := blockWriter(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.IngestReports(ctx, reports("gaveup", 2), nil)
		done <- err
	}()
	waitQueued(t, s, 1)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a canceled caller still waits behind the writer")
	}
	release()
	if _, err := s.IngestReports(context.Background(), reports("after", 1), nil); err != nil {
		t.Fatal(err)
	}
	rs, err := s.ListReports(context.Background(), store.ReportQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if strings.HasPrefix(r.Key.MessageID, "gaveup") {
			t.Errorf("report %s of a canceled request was stored", r.Key.MessageID)
		}
	}
	if len(rs) != 2 {
		t.Errorf("reports = %d, want 2 (block, after)", len(rs))
	}
}

func TestCancelAfterTaken(t *testing.T) {
	s := openInternal(t)
	entered, gate := make(chan struct{}), make(chan struct{})
	s.w.fault = func(r *request) error {
		close(entered)
		<-gate
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.IngestReports(ctx, reports("taken", 2), nil)
		done <- err
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		t.Fatalf("returned (%v) before its transaction ended", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(gate)
	if err := <-done; err != nil {
		t.Errorf("err = %v, want nil: the work was committed", err)
	}
}

// The plans SearchProfiles and the listings rely on; see the comments on
// the indexes in migrations/. A full scan or a sort of a whole window
// would pass every functional test and fail in production.
func TestQueryPlans(t *testing.T) {
	s := openInternal(t)
	now := time.Now()
	plan := func(query string, args []any) string {
		t.Helper()
		rows, err := s.readDB.Query("EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, query)
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, detail)
		}
		return strings.Join(lines, "\n")
	}
	q := store.ProfileQuery{Names: []string{"a", "b"}, Since: now, Until: now, AfterProfileID: "p"}
	windowFirst, wargs := searchProfilesSQL(q, q.Names, false)
	profileFirst, pargs := searchProfilesSQL(q, q.Names, true)
	allNames, aargs := searchProfilesSQL(store.ProfileQuery{Since: now}, nil, true)
	probe, prargs := windowProbeSQL(q, q.Names, 10)
	tests := []struct {
		name          string
		query         string
		args          []any
		want, notWant []string
	}{
		{"window first", windowFirst, wargs,
			[]string{"COVERING INDEX profile_events_window (name=? AND time>? AND time<?)", "profile_events_activity (profile_id=? AND time=?)"}, nil},
		{"profile first", profileFirst, pargs,
			[]string{"COVERING INDEX profile_events_activity (profile_id>?)"}, []string{"TEMP B-TREE"}},
		{"all names", allNames, aargs,
			[]string{"COVERING INDEX profile_events_activity (profile_id>?)"}, []string{"TEMP B-TREE"}},
		{"probe", probe, prargs, []string{"COVERING INDEX profile_events_window"}, nil},
		{"activity", `SELECT id, name, time, profile_id, email, params FROM profile_events
			WHERE profile_id = ? AND name IN (?, ?) AND time <= ? AND (time < ? OR id < ?) ORDER BY time DESC, id DESC LIMIT ?`,
			[]any{"p", "a", "b", 1, 1, 1, 10},
			[]string{"INDEX profile_events_activity (profile_id=? AND time<?)"}, []string{"TEMP B-TREE"}},
		{"reports by outcome", `SELECT id FROM delivery_reports WHERE 1 AND outcome = ? AND id < ? ORDER BY id DESC LIMIT ?`,
			[]any{1, 1, 10}, []string{"delivery_reports_outcome (outcome=? AND rowid<?)"}, []string{"TEMP B-TREE"}},
		{"reports", `SELECT id FROM delivery_reports WHERE 1 AND id < ? ORDER BY id DESC LIMIT ?`,
			[]any{1, 10}, []string{"INTEGER PRIMARY KEY (rowid<?)"}, []string{"TEMP B-TREE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan(tt.query, tt.args)
			t.Logf("plan:\n%s", got)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("plan lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("plan has %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestPadPow2(t *testing.T) {
	tests := []struct {
		n, want int
	}{{0, 0}, {1, 1}, {2, 2}, {3, 4}, {5, 8}, {100, 128}, {300, inChunk}, {inChunk, inChunk}}
	for _, tt := range tests {
		values := make([]any, tt.n)
		for i := range values {
			values[i] = i
		}
		got := padPow2(values)
		if len(got) != tt.want {
			t.Errorf("padPow2(%d values) has %d, want %d", tt.n, len(got), tt.want)
		}
		for i := range got {
			if want := min(i, tt.n-1); got[i] != want {
				t.Errorf("padPow2(%d values)[%d] = %v, want %v", tt.n, i, got[i], want)
			}
		}
	}
}

// Requests sharing one transaction count soft bounces one after the
// other, as if each had its own: a delivery between two requests' bounces
// restarts the count, and the limit reached goes to the request whose
// bounces reached it, once.
func TestSoftBounceRequestsShareATransaction(t *testing.T) {
	s := openInternal(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	limit := store.SoftBounceLimit{Limit: 3, Window: time.Hour, Reason: "soft-bounce limit"}
	report := func(msg string, role store.SoftBounceRole) store.Report {
		r := store.Report{Key: store.ReportKey{MessageID: msg, DoneAt: "2026-03-01T11:00:00.000+0000"},
			ProfileID: "p", Email: "x@example.com", Outcome: store.OutcomeNoError, ReceiveTime: now, SoftBounce: role}
		if role == store.SoftBounceCounted {
			r.Outcome, r.EventName, r.SoftBounceLimit = store.OutcomeEvent, "newsletter.softbounce", limit
		}
		return r
	}
	bounces := func(prefix string, n int) []store.Report {
		out := make([]store.Report, n)
		for i := range out {
			out[i] = report(fmt.Sprintf("%s-%d", prefix, i), store.SoftBounceCounted)
		}
		return out
	}
	calls := [][]store.Report{
		bounces("a", 2), // a count of 2
		{report("delivered", store.SoftBounceResets)}, // back to 0
		bounces("b", 2), // 2 again: had the delivery not reset, 4
		bounces("c", 1), // 3: reached, by c
		bounces("d", 1), // 1
	}
	release := blockWriter(t, s)
	results := make([]store.IngestResult, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			var err error
			if results[i], err = s.IngestReports(context.Background(), c, nil); err != nil {
				t.Error(err)
			}
		})
		waitQueued(t, s, i+1)
	}
	before := s.w.commits.Load()
	release()
	wg.Wait()
	if got := s.w.commits.Load() - before; got != 2 {
		t.Fatalf("transactions = %d, want 2: the blocked one, then one for the queued requests", got)
	}
	for i, res := range results {
		got := len(res.SoftBounceLimitsReached)
		if want := map[int]int{3: 1}[i]; got != want {
			t.Errorf("request %d reached the limit %d times, want %d: %+v", i, got, want, res.SoftBounceLimitsReached)
		}
	}
	if r := results[3].SoftBounceLimitsReached; len(r) == 1 {
		want := []int64{results[2].IDs[0], results[2].IDs[1], results[3].IDs[0]}
		if !slices.Equal(r[0].EventIDs, want) {
			t.Errorf("limit reached by events %v, want b's two and c's %v", r[0].EventIDs, want)
		}
	}
	ss, err := s.SuppressedAmong(context.Background(), []string{"x@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if sp, ok := ss["x@example.com"]; !ok || sp.Origin != store.SuppressionFromSoftBounceLimit {
		t.Errorf("suppression = %+v, %v, want the soft-bounce limit's", sp, ok)
	}
}
