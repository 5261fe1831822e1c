package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// testSequencer is the owner the event-log tests sequence as.
const testSequencer = "sequencer-1"

// acquireLease takes a lease, failing the test unless it is granted.
func acquireLease(t *testing.T, s store.Store, name, owner string, now time.Time) {
	t.Helper()
	held, err := s.AcquireLease(context.Background(), name, owner, now, time.Minute)
	if err != nil || !held {
		t.Fatalf("AcquireLease(%s, %s) = %v, %v; want held", name, owner, held, err)
	}
}

// sequenceAll sequences until the outbox is empty and returns how many
// events it moved.
func sequenceAll(t *testing.T, s store.Store, owner string, batch int) int {
	t.Helper()
	total := 0
	for {
		n, err := s.SequenceEvents(context.Background(), owner, batch)
		if err != nil {
			t.Fatalf("SequenceEvents: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

func readLog(t *testing.T, s store.Store, q store.EventLogQuery) []store.LoggedEvent {
	t.Helper()
	evs, err := s.ReadEventLog(context.Background(), q)
	if err != nil {
		t.Fatalf("ReadEventLog(%+v): %v", q, err)
	}
	return evs
}

// logMessages names logged events by the message their Params carry.
func logMessages(evs []store.LoggedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Params["message"]
	}
	return out
}

func logPositions(evs []store.LoggedEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Position
	}
	return out
}

// Only events stored now, by the ingest that stores them, get an outbox
// entry: not duplicates, not reports without an event, not an ingest that
// was given up.
func testEventOutbox(t *testing.T, open opener) {
	a, b := rep("a", store.OutcomeEvent), rep("b", store.OutcomeEvent)
	tests := []struct {
		name   string
		before []store.Report // ingested and sequenced first
		// reports are ingested next; wantMoved of their events are then
		// sequenced, and wantLog is the whole log by message.
		reports   []store.Report
		wantMoved int
		wantLog   []string
	}{
		{"events only", nil, []store.Report{a, rep("n", store.OutcomeNoError), rep("u", store.OutcomeUnclassified), b}, 2, []string{"a", "b"}},
		{"repeat within one call", nil, []store.Report{a, a, b}, 2, []string{"a", "b"}},
		{"repeat across calls", []store.Report{a}, []store.Report{b, a}, 1, []string{"a", "b"}},
		{"nothing new", []store.Report{a, b}, []store.Report{b, a}, 0, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
			if tt.before != nil {
				ingest(t, s, tt.before, nil)
				sequenceAll(t, s, testSequencer, 100)
			}
			ingest(t, s, tt.reports, nil)
			if got := sequenceAll(t, s, testSequencer, 100); got != tt.wantMoved {
				t.Errorf("sequenced %d events, want %d", got, tt.wantMoved)
			}
			if got := logMessages(readLog(t, s, store.EventLogQuery{Limit: 100})); !reflect.DeepEqual(got, tt.wantLog) {
				t.Errorf("log = %q, want %q", got, tt.wantLog)
			}
		})
	}

	t.Run("canceled ingest", func(t *testing.T) {
		s := open(t)
		acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.IngestReports(ctx, []store.Report{a}, nil); err == nil {
			t.Fatal("IngestReports with a canceled context: no error")
		}
		if got := sequenceAll(t, s, testSequencer, 100); got != 0 {
			t.Errorf("sequenced %d events after a canceled ingest, want 0", got)
		}
	})
}

// Events are sequenced in the order they were stored, with the positions
// 1, 2, 3, ..., and the log holds them exactly as the activity list does.
func testSequenceEvents(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
	if n, err := s.SequenceEvents(ctx, testSequencer, 10); err != nil || n != 0 {
		t.Errorf("SequenceEvents of an empty outbox = %d, %v; want 0, nil", n, err)
	}
	if last, err := s.LastEventPosition(ctx); err != nil || last != 0 {
		t.Errorf("LastEventPosition of an empty log = %d, %v; want 0, nil", last, err)
	}
	first := []store.Report{
		event("m1", "p1", "p1@example.com", "newsletter.hardbounce", at(time.Minute)),
		event("m2", "p2", "p2@example.com", "newsletter.softbounce", at(0)),
		event("m3", "p1", "p1@example.com", "newsletter.softbounce", at(-time.Hour)),
	}
	first[1].Params = nil
	ingest(t, s, first, nil)
	ingest(t, s, []store.Report{event("m4", "p2", "p2@example.com", "newsletter.dropped", at(0))}, nil)
	ingest(t, s, []store.Report{event("m5", "p1", "p1@example.com", "newsletter.hardbounce", at(0))}, nil)

	var moved []int
	for {
		n, err := s.SequenceEvents(ctx, testSequencer, 2)
		if err != nil {
			t.Fatalf("SequenceEvents: %v", err)
		}
		if n == 0 {
			break
		}
		moved = append(moved, n)
	}
	if want := []int{2, 2, 1}; !reflect.DeepEqual(moved, want) {
		t.Errorf("SequenceEvents by 2 moved %v, want %v", moved, want)
	}

	all := readLog(t, s, store.EventLogQuery{Limit: 100})
	if got, want := logPositions(all), []int64{1, 2, 3, 4, 5}; !reflect.DeepEqual(got, want) {
		t.Errorf("positions = %v, want %v", got, want)
	}
	// The message "m2" has no params, so its event is named by id.
	if got, want := logMessages(all), []string{"m1", "", "m3", "m4", "m5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("log = %q, want %q", got, want)
	}
	byID := map[int64]store.Event{}
	for _, p := range []string{"p1", "p2"} {
		for _, e := range listEvents(t, s, store.EventQuery{ProfileID: p, Limit: 100}) {
			byID[e.ID] = e
		}
	}
	for _, e := range all {
		want, ok := byID[e.ID]
		if !ok {
			t.Errorf("position %d: event %d is in no activity list", e.Position, e.ID)
			continue
		}
		sameTime(t, fmt.Sprintf("Time at position %d", e.Position), e.Time, want.Time)
		e.Time, want.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(e.Event, want) {
			t.Errorf("position %d = %+v, want %+v as ListEvents has it", e.Position, e.Event, want)
		}
	}
	if last, err := s.LastEventPosition(ctx); err != nil || last != 5 {
		t.Errorf("LastEventPosition = %d, %v; want 5, nil", last, err)
	}

	tests := []struct {
		name string
		q    store.EventLogQuery
		want []int64
	}{
		{"after", store.EventLogQuery{After: 3, Limit: 10}, []int64{4, 5}},
		{"limit", store.EventLogQuery{After: 1, Limit: 2}, []int64{2, 3}},
		{"names", store.EventLogQuery{Names: []string{"newsletter.hardbounce", "newsletter.dropped"}, Limit: 10}, []int64{1, 4, 5}},
		{"names after", store.EventLogQuery{After: 1, Names: []string{"newsletter.hardbounce"}, Limit: 10}, []int64{5}},
		{"repeated name", store.EventLogQuery{Names: []string{"newsletter.softbounce", "newsletter.softbounce"}, Limit: 10}, []int64{2, 3}},
		{"past the end", store.EventLogQuery{After: 5, Limit: 10}, []int64{}},
		{"default limit", store.EventLogQuery{}, []int64{1, 2, 3, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := logPositions(readLog(t, s, tt.q)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("positions = %v, want %v", got, tt.want)
			}
		})
	}
}

// One owner at a time holds a lease; a lease that runs out is taken over,
// and its former owner is then refused.
func testEventLeases(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	const pub = "publisher-x"
	ingest(t, s, []store.Report{rep("a", store.OutcomeEvent)}, nil)

	steps := []struct {
		name        string
		lease       string
		owner       string
		now         time.Duration // since at(0); every lease lasts a minute
		release     bool
		want        bool // held, after an acquire
		wantHolders map[string]string
	}{
		{"first takes it", store.SequencerLease, "a", 0, false, true, map[string]string{store.SequencerLease: "a"}},
		{"live lease refused", store.SequencerLease, "b", 30 * time.Second, false, false, map[string]string{store.SequencerLease: "a"}},
		{"renewed by its holder", store.SequencerLease, "a", 50 * time.Second, false, true, map[string]string{store.SequencerLease: "a"}},
		{"renewal counts from the renewal", store.SequencerLease, "b", 100 * time.Second, false, false, map[string]string{store.SequencerLease: "a"}},
		{"another lease is another name", pub, "b", 100 * time.Second, false, true, map[string]string{store.SequencerLease: "a", pub: "b"}},
		{"expired lease taken over", store.SequencerLease, "b", 111 * time.Second, false, true, map[string]string{store.SequencerLease: "b", pub: "b"}},
		{"former holder refused", store.SequencerLease, "a", 112 * time.Second, false, false, map[string]string{store.SequencerLease: "b", pub: "b"}},
		{"release by a non-holder does nothing", store.SequencerLease, "a", 112 * time.Second, true, false, map[string]string{store.SequencerLease: "b", pub: "b"}},
		{"release by the holder", store.SequencerLease, "b", 112 * time.Second, true, false, map[string]string{pub: "b"}},
		{"released lease free at once", store.SequencerLease, "a", 113 * time.Second, false, true, map[string]string{store.SequencerLease: "a", pub: "b"}},
	}
	for _, st := range steps {
		if st.release {
			if err := s.ReleaseLease(ctx, st.lease, st.owner); err != nil {
				t.Fatalf("%s: ReleaseLease: %v", st.name, err)
			}
		} else {
			held, err := s.AcquireLease(ctx, st.lease, st.owner, at(st.now), time.Minute)
			if err != nil {
				t.Fatalf("%s: AcquireLease: %v", st.name, err)
			}
			if held != st.want {
				t.Errorf("%s: AcquireLease(%s, %s) = %v, want %v", st.name, st.lease, st.owner, held, st.want)
			}
		}
		// Who holds a lease shows in who may act under it.
		for _, lease := range []string{store.SequencerLease, pub} {
			for _, owner := range []string{"a", "b"} {
				var err error
				if lease == store.SequencerLease {
					_, err = s.SequenceEvents(ctx, owner, 0)
				} else {
					err = s.MarkPublished(ctx, lease, owner, 0)
				}
				holds := st.wantHolders[lease] == owner
				if holds && err != nil {
					t.Errorf("%s: %s acting under %s: %v, want it allowed", st.name, owner, lease, err)
				}
				if !holds && !errors.Is(err, store.ErrLeaseLost) {
					t.Errorf("%s: %s acting under %s: err = %v, want ErrLeaseLost", st.name, owner, lease, err)
				}
			}
		}
	}
}

// A publisher's position starts at 0, only moves forward, never past the
// end of the log, and is its own.
func testPublishedPosition(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	ingest(t, s, []store.Report{rep("a", store.OutcomeEvent), rep("b", store.OutcomeEvent), rep("c", store.OutcomeEvent)}, nil)
	acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
	sequenceAll(t, s, testSequencer, 10)
	acquireLease(t, s, "pub-1", "p", at(0))
	acquireLease(t, s, "pub-2", "p", at(0))

	steps := []struct {
		name    string
		mark    int64
		wantErr bool
		want    int64
	}{
		{"start", -1, false, 0},
		{"forward", 2, false, 2},
		{"not back", 1, false, 2},
		{"same", 2, false, 2},
		{"to the end", 3, false, 3},
		{"not past the end", 4, true, 3},
	}
	for _, st := range steps {
		if st.mark >= 0 {
			err := s.MarkPublished(ctx, "pub-1", "p", st.mark)
			if (err != nil) != st.wantErr {
				t.Errorf("%s: MarkPublished(%d) err = %v, want error %v", st.name, st.mark, err, st.wantErr)
			}
			if err != nil && (errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrLeaseLost)) {
				t.Errorf("%s: MarkPublished(%d) err = %v, want neither unavailable nor lease lost", st.name, st.mark, err)
			}
		}
		got, err := s.PublishedPosition(ctx, "pub-1")
		if err != nil || got != st.want {
			t.Errorf("%s: PublishedPosition = %d, %v; want %d", st.name, got, err, st.want)
		}
	}
	if got, err := s.PublishedPosition(ctx, "pub-2"); err != nil || got != 0 {
		t.Errorf("PublishedPosition of another publisher = %d, %v; want 0", got, err)
	}
}

// Ingests, sequencers that keep taking the lease from each other, and
// readers all run at once. Each reader must see the log grow without gaps
// (every read continues exactly where the last one ended), every event must
// get exactly one position, and a testSequencer whose lease was taken must be
// refused rather than number anything.
func testSequenceConcurrent(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	const ingesters, bodies, perBody, readers = 4, 10, 5, 3
	total := ingesters * bodies * perBody

	var (
		wg       sync.WaitGroup
		ingested sync.WaitGroup
		clock    atomic.Int64 // lease "now", in minutes since at(0); each acquire takes over
		mu       sync.Mutex
		errs     []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for i := range ingesters {
		ingested.Add(1)
		wg.Go(func() {
			defer ingested.Done()
			for b := range bodies {
				reports := make([]store.Report, perBody)
				for j, m := range msgs(fmt.Sprintf("i%d-b%d-", i, b), perBody) {
					reports[j] = event(m, fmt.Sprintf("p%d", j), "x@example.com", "newsletter.hardbounce", at(0))
				}
				if _, err := s.IngestReports(ctx, reports, nil); err != nil {
					fail(fmt.Errorf("ingester %d: %w", i, err))
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { ingested.Wait(); close(done) }()

	var (
		sequenced atomic.Int64
		seqs      sync.WaitGroup
	)
	for i := range 2 {
		owner := fmt.Sprint("seq-", i)
		seqs.Add(1)
		wg.Go(func() {
			defer seqs.Done()
			for {
				finished := false
				select {
				case <-done:
					finished = true
				default:
				}
				now := at(time.Duration(clock.Add(2)) * time.Minute)
				held, err := s.AcquireLease(ctx, store.SequencerLease, owner, now, time.Minute)
				if err != nil {
					fail(fmt.Errorf("%s: AcquireLease: %w", owner, err))
					return
				}
				if !held {
					continue
				}
				n, err := s.SequenceEvents(ctx, owner, 7)
				if err != nil && !errors.Is(err, store.ErrLeaseLost) {
					fail(fmt.Errorf("%s: SequenceEvents: %w", owner, err))
					return
				}
				sequenced.Add(int64(n))
				if finished && n == 0 && err == nil {
					return
				}
			}
		})
	}

	seqDone := make(chan struct{})
	go func() { seqs.Wait(); close(seqDone) }()

	seen := make([]map[int64]int64, readers) // per reader: event id -> position
	for r := range readers {
		seen[r] = map[int64]int64{}
		wg.Go(func() {
			var after int64
			for {
				// Once the sequencers are done, one more read that finds
				// nothing ends the reader, whatever it has seen.
				last := false
				select {
				case <-seqDone:
					last = true
				default:
				}
				evs, err := s.ReadEventLog(ctx, store.EventLogQuery{After: after, Limit: 13})
				if err != nil {
					fail(fmt.Errorf("reader %d: %w", r, err))
					return
				}
				for _, e := range evs {
					if e.Position != after+1 {
						fail(fmt.Errorf("reader %d: after position %d read %d: a gap", r, after, e.Position))
						return
					}
					if p, dup := seen[r][e.ID]; dup {
						fail(fmt.Errorf("reader %d: event %d at positions %d and %d", r, e.ID, p, e.Position))
						return
					}
					seen[r][e.ID] = e.Position
					after = e.Position
				}
				if last && len(evs) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if got := sequenced.Load(); got != int64(total) {
		t.Errorf("sequenced %d events, want %d", got, total)
	}
	for r := range readers {
		if len(seen[r]) != total {
			t.Errorf("reader %d saw %d events, want %d", r, len(seen[r]), total)
		}
		if !reflect.DeepEqual(seen[r], seen[0]) {
			t.Errorf("reader %d saw other positions than reader 0", r)
		}
	}
	if last, err := s.LastEventPosition(ctx); err != nil || last != int64(total) {
		t.Errorf("LastEventPosition = %d, %v; want %d", last, err, total)
	}
}

// After Close the event log answers ErrUnavailable, like every write.
func testEventLogClosed(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.SequenceEvents(ctx, testSequencer, 10); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("SequenceEvents after Close: err = %v, want ErrUnavailable", err)
	}
	if _, err := s.AcquireLease(ctx, store.SequencerLease, testSequencer, at(0), time.Minute); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("AcquireLease after Close: err = %v, want ErrUnavailable", err)
	}
	if _, err := s.ReadEventLog(ctx, store.EventLogQuery{}); err == nil {
		t.Error("ReadEventLog after Close: no error")
	}
}
