package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// Replicas counting soft bounces of shared addresses at once, each
// merging its concurrent calls, with deliveries that make the counts'
// deletes lock rows in opposite orders (so that transactions deadlock and
// are retried): every call succeeds, a limit reached goes to the call
// whose bounce reached it, with limit distinct events of stored bounces,
// none handed over twice, and the address is suppressed.
func TestReplicasSoftBounceLimit(t *testing.T) {
	t.Parallel()
	rs := replicas(t, 2)
	const callersPerReplica, rounds, limit = 6, 4, 3
	pol := store.SoftBounceLimit{Limit: limit, Window: time.Hour, Reason: "soft-bounce limit"}
	now := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	report := func(msg, email string, bounce bool, at time.Duration) store.Report {
		r := store.Report{
			Key:          store.ReportKey{MessageID: msg, StatusID: 5, DoneAt: "2026-03-01T11:00:00.000+0000"},
			ConnectionID: "c", ProfileID: "p-" + email, Email: email, Outcome: store.OutcomeNoError,
			ReceiveTime: now.Add(at), EventTime: now.Add(at), SoftBounce: store.SoftBounceResets,
		}
		if bounce {
			r.Outcome, r.EventName, r.SoftBounce, r.SoftBounceLimit = store.OutcomeEvent, "newsletter.softbounce", store.SoftBounceCounted, pol
		}
		return r
	}
	var (
		mu      sync.Mutex
		handed  = map[int64]int{}
		reached = map[string]int{}
		wg      sync.WaitGroup
	)
	for round := range rounds {
		start := make(chan struct{})
		for ri, s := range rs {
			for c := range callersPerReplica {
				wg.Go(func() {
					<-start
					// Half the calls deliver to a and bounce b, c; the
					// other half deliver to c and bounce b, a. Bounces of
					// b alone in the odd rounds.
					id := fmt.Sprintf("r%d-%d-%d", round, ri, c)
					at := time.Duration(round*100+ri*10+c) * time.Millisecond
					var reports []store.Report
					if round%2 == 1 {
						reports = []store.Report{report(id+"-b", "b@x", true, at)}
					} else if c%2 == 0 {
						reports = []store.Report{report(id+"-da", "a@x", false, at), report(id+"-b", "b@x", true, at), report(id+"-c", "c@x", true, at)}
					} else {
						reports = []store.Report{report(id+"-dc", "c@x", false, at), report(id+"-b", "b@x", true, at), report(id+"-a", "a@x", true, at)}
					}
					res, err := s.IngestReports(context.Background(), reports, nil)
					if err != nil {
						t.Errorf("%s: %v", id, err)
						return
					}
					own := map[string]int64{}
					for i, r := range reports {
						if !res.Stored[i] {
							t.Errorf("%s: report %d not stored", id, i)
						}
						if r.SoftBounce == store.SoftBounceCounted {
							own[r.Email] = res.IDs[i]
						}
					}
					mu.Lock()
					defer mu.Unlock()
					for _, r := range res.SoftBounceLimitsReached {
						reached[r.Email]++
						if len(r.EventIDs) != limit {
							t.Errorf("%s: reached %v, want %d events", id, r, limit)
						}
						if !slices.Contains(r.EventIDs, own[r.Email]) {
							t.Errorf("%s: reached %v without its own bounce %d of %s", id, r, own[r.Email], r.Email)
						}
						for _, e := range r.EventIDs {
							handed[e]++
						}
					}
				})
			}
		}
		close(start)
		wg.Wait()
	}
	for e, n := range handed {
		if n != 1 {
			t.Errorf("bounce %d handed over %d times", e, n)
		}
	}
	// b is never delivered to: its rounds*callers bounces all count.
	total := rounds * len(rs) * callersPerReplica
	if reached["b@x"] != total/limit {
		t.Errorf("b@x reached the limit %d times, want %d", reached["b@x"], total/limit)
	}
	ss, err := rs[0].SuppressedAmong(context.Background(), []string{"a@x", "b@x", "c@x"})
	if err != nil {
		t.Fatal(err)
	}
	for e := range reached {
		if sp, ok := ss[e]; !ok || sp.Origin != store.SuppressionFromSoftBounceLimit {
			t.Errorf("%s reached the limit but is suppressed as %+v (%v)", e, sp, ok)
		}
	}
}
