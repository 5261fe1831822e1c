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

// softBounce is a bounce of email at t0+d; id names it within a case (the
// store gives the event its own id).
func softBounce(email string, id int64, d time.Duration) store.SoftBounce {
	return store.SoftBounce{Email: email, EventID: id, Time: at(d)}
}

// softBounceReport is a newsletter.softbounce report that counts under
// limit, received at b.Time; its message id is made from b's id.
func softBounceReport(b store.SoftBounce, limit store.SoftBounceLimit) store.Report {
	r := event(fmt.Sprintf("sb-%d", b.EventID), "profile-"+b.Email, b.Email, "newsletter.softbounce", b.Time)
	r.ReceiveTime, r.SoftBounce, r.SoftBounceLimit = b.Time, store.SoftBounceCounted, limit
	return r
}

// deliveryReport is a delivered report to email, which resets its count.
func deliveryReport(msg, email string, received time.Time) store.Report {
	r := rep(msg, store.OutcomeNoError)
	r.Email, r.ReceiveTime, r.SoftBounce = email, received, store.SoftBounceResets
	return r
}

// ingestSoftBounces ingests one call of deliveries to resets, then bounces,
// and returns the addresses that reached the limit with their events by
// the case's ids, sorted by address. names maps the store's ids to the
// case's, over all of a case's calls.
func ingestSoftBounces(t *testing.T, s store.Store, limit store.SoftBounceLimit, names map[int64]int64, call int, resets []string, bs ...store.SoftBounce) []store.SoftBounceLimitReached {
	t.Helper()
	var reports []store.Report
	for i, e := range resets {
		reports = append(reports, deliveryReport(fmt.Sprintf("d-%d-%d", call, i), e, t0))
	}
	for _, b := range bs {
		reports = append(reports, softBounceReport(b, limit))
	}
	res := ingest(t, s, reports, nil)
	for i, b := range bs {
		names[res.IDs[len(resets)+i]] = b.EventID
	}
	got := res.SoftBounceLimitsReached
	for _, r := range got {
		for j, id := range r.EventIDs {
			r.EventIDs[j] = names[id]
		}
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Email < got[j].Email })
	return got
}

// Soft bounces count per address to the limit, within the window, until a
// delivery resets them; reaching the limit hands over the events once,
// suppresses the address and starts the count afresh.
func testSoftBounceCounts(t *testing.T, open opener) {
	hour := store.SoftBounceLimit{Limit: 3, Window: time.Hour, Reason: "soft-bounce limit"}
	type step struct {
		reset []string           // deliveries to these first
		add   []store.SoftBounce // then these bounces, in the same call
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
			{add: []store.SoftBounce{softBounce("a@x", 1, 0)}},
			{add: []store.SoftBounce{softBounce("a@x", 2, time.Minute), softBounce("b@x", 3, time.Minute)}},
			{add: []store.SoftBounce{softBounce("a@x", 4, 2*time.Minute)},
				want: []store.SoftBounceLimitReached{reached("a@x", 1, 2, 4)}},
			// Handed over once: the count starts afresh.
			{add: []store.SoftBounce{softBounce("a@x", 5, 3*time.Minute), softBounce("b@x", 6, 3*time.Minute)}},
			{add: []store.SoftBounce{softBounce("a@x", 7, 4*time.Minute), softBounce("b@x", 8, 4*time.Minute)},
				want: []store.SoftBounceLimitReached{reached("b@x", 3, 6, 8)}},
		}},
		{"the window drops old bounces", hour, []step{
			{add: []store.SoftBounce{softBounce("a@x", 1, 0), softBounce("a@x", 2, 2*time.Minute)}},
			// At t0+61m the bounce of t0 is more than an hour old.
			{add: []store.SoftBounce{softBounce("a@x", 3, 61*time.Minute)}},
			{add: []store.SoftBounce{softBounce("a@x", 4, 61*time.Minute)},
				want: []store.SoftBounceLimitReached{reached("a@x", 2, 3, 4)}},
			// A bounce already older than the window never counts.
			{add: []store.SoftBounce{softBounce("c@x", 5, 0), softBounce("c@x", 6, time.Hour), softBounce("c@x", 7, 3*time.Hour)}},
			{add: []store.SoftBounce{softBounce("c@x", 8, 3*time.Hour)}},
			{add: []store.SoftBounce{softBounce("c@x", 9, 3*time.Hour)},
				want: []store.SoftBounceLimitReached{reached("c@x", 7, 8, 9)}},
		}},
		{"a delivery resets", hour, []step{
			{add: []store.SoftBounce{softBounce("a@x", 1, 0), softBounce("a@x", 2, 0), softBounce("b@x", 3, 0), softBounce("b@x", 4, 0)}},
			{reset: []string{"a@x", "never@x"}, add: []store.SoftBounce{softBounce("a@x", 5, time.Minute), softBounce("b@x", 6, time.Minute)},
				want: []store.SoftBounceLimitReached{reached("b@x", 3, 4, 6)}},
			{add: []store.SoftBounce{softBounce("a@x", 7, 2*time.Minute)}},
			{reset: []string{"nobody@x"}, add: []store.SoftBounce{softBounce("a@x", 8, 3*time.Minute)},
				want: []store.SoftBounceLimitReached{reached("a@x", 5, 7, 8)}},
			// Deliveries alone, and to addresses with no count.
			{reset: []string{"b@x", "nobody@x"}},
		}},
		{"more than the limit in one call keeps the newest", hour, []step{
			{add: []store.SoftBounce{
				softBounce("a@x", 4, 4*time.Minute), softBounce("a@x", 1, time.Minute), softBounce("a@x", 5, 5*time.Minute),
				softBounce("a@x", 2, 2*time.Minute), softBounce("a@x", 3, 3*time.Minute)},
				want: []store.SoftBounceLimitReached{reached("a@x", 3, 4, 5)}},
		}},
		{"a limit of one", store.SoftBounceLimit{Limit: 1, Window: time.Minute, Reason: "soft-bounce limit"}, []step{
			{add: []store.SoftBounce{softBounce("a@x", 1, 0), softBounce("b@x", 2, 0)},
				want: []store.SoftBounceLimitReached{reached("a@x", 1), reached("b@x", 2)}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			suppressed, names := map[string]bool{}, map[int64]int64{}
			for i, st := range c.steps {
				got := ingestSoftBounces(t, s, c.limit, names, i, st.reset, st.add...)
				if len(got) == 0 {
					got = nil
				}
				if !reflect.DeepEqual(got, st.want) {
					t.Errorf("step %d: reached %v, want %v", i, got, st.want)
				}
				for _, r := range st.want {
					suppressed[r.Email] = true
				}
			}
			ss, err := s.SuppressedAmong(context.Background(), []string{"a@x", "b@x", "c@x"})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range []string{"a@x", "b@x", "c@x"} {
				sp, ok := ss[e]
				if ok != suppressed[e] {
					t.Errorf("%s suppressed %v, want %v", e, ok, suppressed[e])
					continue
				}
				if ok && (sp.Origin != store.SuppressionFromSoftBounceLimit || sp.Reason != c.limit.Reason ||
					sp.EventName != "newsletter.softbounce" || len(sp.CauseEventIDs) != c.limit.Limit-1 || sp.ProfileID != "profile-"+e) {
					t.Errorf("suppression of %s = %+v, want the soft-bounce limit's, held by %d more events", e, sp, c.limit.Limit-1)
				}
			}
		})
	}
}

// A bounce counts once, however often it is ingested; a suppression lasts
// the limit's lifetime; a counting report without a limit is refused.
func testSoftBounceEdges(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	limit := store.SoftBounceLimit{Limit: 2, Window: time.Hour, Reason: "soft-bounce limit", SuppressFor: 24 * time.Hour}
	b := softBounceReport(softBounce("a@x", 1, 0), limit)
	for range 3 {
		if got := ingest(t, s, []store.Report{b}, nil).SoftBounceLimitsReached; len(got) != 0 {
			t.Fatalf("the same bounce again reached %v, want nothing", got)
		}
	}
	got := ingest(t, s, []store.Report{softBounceReport(softBounce("a@x", 2, time.Minute), limit)}, nil).SoftBounceLimitsReached
	if len(got) != 1 || len(got[0].EventIDs) != 2 {
		t.Fatalf("second bounce reached %v, want a@x with two events", got)
	}
	ss, err := s.SuppressedAmong(ctx, []string{"a@x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := at(time.Minute).Add(24 * time.Hour); !ss["a@x"].ExpireTime.Equal(want) {
		t.Errorf("suppression expires %v, want %v", ss["a@x"].ExpireTime, want)
	}
	for _, bad := range []store.SoftBounceLimit{{Window: time.Hour}, {Limit: 2}} {
		_, err := s.IngestReports(ctx, []store.Report{softBounceReport(softBounce("b@x", 3, 0), bad)}, nil)
		if !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("IngestReports with soft-bounce limit %+v = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

// Of concurrent callers, each reaching of the limit goes to exactly one,
// and no bounce is lost or handed over twice.
func testSoftBounceConcurrent(t *testing.T, open opener) {
	s := open(t)
	const callers, limit = 12, 3
	pol := store.SoftBounceLimit{Limit: limit, Window: time.Hour, Reason: "soft-bounce limit"}
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
			res, err := s.IngestReports(context.Background(), []store.Report{
				softBounceReport(softBounce("shared@x", int64(i+1), time.Duration(i)*time.Second), pol),
				softBounceReport(softBounce(fmt.Sprintf("own-%02d@x", i), int64(100+i), 0), pol),
			}, nil)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range res.SoftBounceLimitsReached {
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
