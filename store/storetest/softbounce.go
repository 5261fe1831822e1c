package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// softBounce is a bounce of email with event id at t0+d.
func softBounce(email string, id int64, d time.Duration) store.SoftBounce {
	return store.SoftBounce{Email: email, EventID: id, Time: at(d)}
}

func recordSoftBounces(t *testing.T, s store.Store, limit store.SoftBounceLimit, now time.Duration, bs ...store.SoftBounce) []store.SoftBounceLimitReached {
	t.Helper()
	got, err := s.RecordSoftBounces(context.Background(), bs, limit, at(now))
	if err != nil {
		t.Fatalf("RecordSoftBounces(%v): %v", bs, err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Email < got[j].Email })
	return got
}

// Soft bounces count per address to the limit, within the window, until a
// delivery resets them; reaching the limit hands over the events once and
// starts the count afresh.
func testSoftBounceCounts(t *testing.T, open opener) {
	hour := store.SoftBounceLimit{Limit: 3, Window: time.Hour}
	type step struct {
		reset []string           // reset these first
		now   time.Duration      // since t0
		add   []store.SoftBounce // then record these
		want  []store.SoftBounceLimitReached
	}
	reached := func(email string, ids ...int64) store.SoftBounceLimitReached {
		return store.SoftBounceLimitReached{Email: email, EventIDs: ids}
	}
	cases := []struct {
		name  string
		limit store.SoftBounceLimit
		steps []step
	}{
		{"counting to the limit", hour, []step{
			{now: 0, add: []store.SoftBounce{softBounce("a@x", 1, 0)}},
			{now: time.Minute, add: []store.SoftBounce{softBounce("a@x", 2, time.Minute), softBounce("b@x", 3, time.Minute)}},
			{now: 2 * time.Minute, add: []store.SoftBounce{softBounce("a@x", 4, 2*time.Minute)},
				want: []store.SoftBounceLimitReached{reached("a@x", 1, 2, 4)}},
			// Handed over once: the count starts afresh.
			{now: 3 * time.Minute, add: []store.SoftBounce{softBounce("a@x", 5, 3*time.Minute), softBounce("b@x", 6, 3*time.Minute)}},
			{now: 4 * time.Minute, add: []store.SoftBounce{softBounce("a@x", 7, 4*time.Minute), softBounce("b@x", 8, 4*time.Minute)},
				want: []store.SoftBounceLimitReached{reached("b@x", 3, 6, 8)}},
		}},
		{"the window drops old bounces", hour, []step{
			{now: 2 * time.Minute, add: []store.SoftBounce{softBounce("a@x", 1, 0), softBounce("a@x", 2, 2*time.Minute)}},
			// At t0+61m the bounce of t0 is more than an hour old.
			{now: 61 * time.Minute, add: []store.SoftBounce{softBounce("a@x", 3, 61*time.Minute)}},
			{now: 61 * time.Minute, add: []store.SoftBounce{softBounce("a@x", 4, 61*time.Minute)},
				want: []store.SoftBounceLimitReached{reached("a@x", 2, 3, 4)}},
			// A bounce already older than the window never counts.
			{now: 3 * time.Hour, add: []store.SoftBounce{softBounce("c@x", 5, 0), softBounce("c@x", 6, time.Hour), softBounce("c@x", 7, 3*time.Hour)}},
			{now: 3 * time.Hour, add: []store.SoftBounce{softBounce("c@x", 8, 3*time.Hour)}},
			{now: 3 * time.Hour, add: []store.SoftBounce{softBounce("c@x", 9, 3*time.Hour)},
				want: []store.SoftBounceLimitReached{reached("c@x", 7, 8, 9)}},
		}},
		{"a delivery resets", hour, []step{
			{now: 0, add: []store.SoftBounce{softBounce("a@x", 1, 0), softBounce("a@x", 2, 0), softBounce("b@x", 3, 0), softBounce("b@x", 4, 0)}},
			{reset: []string{"a@x", "never@x"}, now: time.Minute, add: []store.SoftBounce{softBounce("a@x", 5, time.Minute), softBounce("b@x", 6, time.Minute)},
				want: []store.SoftBounceLimitReached{reached("b@x", 3, 4, 6)}},
			{now: 2 * time.Minute, add: []store.SoftBounce{softBounce("a@x", 7, 2*time.Minute)}},
			{reset: []string{"nobody@x"}, now: 3 * time.Minute, add: []store.SoftBounce{softBounce("a@x", 8, 3*time.Minute)},
				want: []store.SoftBounceLimitReached{reached("a@x", 5, 7, 8)}},
		}},
		{"more than the limit in one call keeps the newest", hour, []step{
			{now: 5 * time.Minute, add: []store.SoftBounce{
				softBounce("a@x", 4, 4*time.Minute), softBounce("a@x", 1, time.Minute), softBounce("a@x", 5, 5*time.Minute),
				softBounce("a@x", 2, 2*time.Minute), softBounce("a@x", 3, 3*time.Minute)},
				want: []store.SoftBounceLimitReached{reached("a@x", 3, 4, 5)}},
		}},
		{"a limit of one", store.SoftBounceLimit{Limit: 1, Window: time.Minute}, []step{
			{now: 0, add: []store.SoftBounce{softBounce("a@x", 1, 0), softBounce("b@x", 2, 0)},
				want: []store.SoftBounceLimitReached{reached("a@x", 1), reached("b@x", 2)}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			for i, st := range c.steps {
				if st.reset != nil {
					if err := s.ResetSoftBounces(context.Background(), st.reset); err != nil {
						t.Fatalf("step %d: ResetSoftBounces(%v): %v", i, st.reset, err)
					}
				}
				got := recordSoftBounces(t, s, c.limit, st.now, st.add...)
				if len(got) == 0 {
					got = nil
				}
				if !reflect.DeepEqual(got, st.want) {
					t.Errorf("step %d: reached %v, want %v", i, got, st.want)
				}
			}
		})
	}
}

// Resetting what has no count, or nothing, succeeds; a limit that is not
// positive is refused.
func testSoftBounceEdges(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	for _, emails := range [][]string{nil, {}, {"a@x"}, {"a@x", "a@x"}} {
		if err := s.ResetSoftBounces(ctx, emails); err != nil {
			t.Errorf("ResetSoftBounces(%q) = %v, want nil", emails, err)
		}
	}
	if got, err := s.RecordSoftBounces(ctx, nil, store.SoftBounceLimit{Limit: 2, Window: time.Hour}, t0); err != nil || len(got) != 0 {
		t.Errorf("RecordSoftBounces(nothing) = %v, %v, want nothing", got, err)
	}
	_, err := s.RecordSoftBounces(ctx, []store.SoftBounce{softBounce("a@x", 1, 0)}, store.SoftBounceLimit{Window: time.Hour}, t0)
	if !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("RecordSoftBounces with limit 0 = %v, want ErrInvalidArgument", err)
	}
}

// Of concurrent callers, each reaching of the limit goes to exactly one,
// and no bounce is lost or handed over twice.
func testSoftBounceConcurrent(t *testing.T, open opener) {
	s := open(t)
	const callers, limit = 12, 3
	pol := store.SoftBounceLimit{Limit: limit, Window: time.Hour}
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
		wg   sync.WaitGroup
		errs = make(chan error, callers)
	)
	for i := range callers {
		wg.Go(func() {
			// Every caller also bounces an address of its own, so that the
			// calls lock more than one row.
			got, err := s.RecordSoftBounces(context.Background(), []store.SoftBounce{
				softBounce("shared@x", int64(i+1), time.Duration(i)*time.Second),
				softBounce(fmt.Sprintf("own-%02d@x", i), int64(100+i), 0),
			}, pol, at(time.Minute))
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range got {
				if r.Email != "shared@x" || len(r.EventIDs) != limit {
					errs <- fmt.Errorf("reached %v, want shared@x with %d events", r, limit)
				}
				for _, id := range r.EventIDs {
					seen[id]++
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != callers {
		t.Errorf("%d bounces handed over, want all %d: %v", len(seen), callers, seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("bounce %d handed over %d times, want once", id, n)
		}
	}
}

// IngestResult.IDs are the ids of the reports stored, which their events
// have; 0 for duplicates.
func testIngestIDs(t *testing.T, open opener) {
	s := open(t)
	ingest(t, s, []store.Report{rep("first", store.OutcomeEvent)}, nil)
	tracked := rep("tracked", store.OutcomeEvent)
	tracked.Kind, tracked.TrackingKey = store.ReportTracking, "evt-1"
	res := ingest(t, s, []store.Report{rep("first", store.OutcomeEvent), rep("second", store.OutcomeEvent), rep("quiet", store.OutcomeNoError)}, nil)
	resTracked := ingest(t, s, []store.Report{tracked}, nil)
	if len(res.IDs) != 3 || res.IDs[0] != 0 || res.IDs[1] == 0 || res.IDs[2] == 0 {
		t.Fatalf("IDs = %v, want 0 for the duplicate and an id for each stored report", res.IDs)
	}
	reports := listReports(t, s, store.ReportQuery{Limit: 10})
	byMessage := map[string]int64{}
	for _, r := range reports {
		byMessage[r.Key.MessageID] = r.ID
	}
	if res.IDs[1] != byMessage["second"] || res.IDs[2] != byMessage["quiet"] {
		t.Errorf("IDs = %v, want the stored reports' ids %v", res.IDs, byMessage)
	}
	evs := listEvents(t, s, store.EventQuery{ProfileID: "profile-second"})
	if len(evs) != 1 || evs[0].ID != res.IDs[1] {
		t.Errorf("events of second = %+v, want one with id %d", evs, res.IDs[1])
	}
	evs = listEvents(t, s, store.EventQuery{ProfileID: "profile-tracked"})
	if len(resTracked.IDs) != 1 || len(evs) != 1 || evs[0].ID != resTracked.IDs[0] {
		t.Errorf("tracking report IDs = %v, events %+v, want the event's id", resTracked.IDs, evs)
	}
}

// withoutIDs checks that res has an id for each report stored and none
// for a duplicate, and returns it without them, for comparing the rest.
func withoutIDs(t *testing.T, res store.IngestResult) store.IngestResult {
	t.Helper()
	if len(res.IDs) != len(res.Stored) {
		t.Errorf("IngestResult has %d IDs for %d reports", len(res.IDs), len(res.Stored))
	}
	for i := range min(len(res.IDs), len(res.Stored)) {
		if (res.IDs[i] != 0) != res.Stored[i] {
			t.Errorf("report %d: stored %v with id %d", i, res.Stored[i], res.IDs[i])
		}
	}
	res.IDs = nil
	return res
}
