package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// idSources reads back every id a store handed out: stored reports of
// both kinds, domain events, and events of the log (sequenced first).
type idSources struct {
	reports      map[int64]store.StoredReport
	domainEvents map[int64]store.DomainEvent
	events       map[int64]store.LoggedEvent
}

func readIDs(t *testing.T, s store.Store, domains ...string) idSources {
	t.Helper()
	ids := idSources{reports: map[int64]store.StoredReport{}, domainEvents: map[int64]store.DomainEvent{}, events: map[int64]store.LoggedEvent{}}
	dup := func(what string, id int64) {
		t.Helper()
		_, r := ids.reports[id]
		_, d := ids.domainEvents[id]
		if r || d {
			t.Errorf("%s has id %d, which another report or domain event has", what, id)
		}
	}
	for _, kind := range []store.ReportKind{store.ReportDelivery, store.ReportTracking} {
		for _, r := range listReports(t, s, store.ReportQuery{Kind: kind, Limit: 10000}) {
			dup(fmt.Sprintf("report %s%s", r.Key.MessageID, r.TrackingKey), r.ID)
			ids.reports[r.ID] = r
		}
	}
	for _, d := range domains {
		for _, e := range mustDomainEvents(t, s, d) {
			dup("domain event "+e.Type, e.ID)
			ids.domainEvents[e.ID] = e
		}
	}
	sequenceAll(t, s, testSequencer, 10000)
	for _, e := range readLog(t, s, store.EventLogQuery{Limit: 100000}) {
		if _, seen := ids.events[e.ID]; seen {
			t.Errorf("two events of the log have id %d", e.ID)
		}
		ids.events[e.ID] = e
	}
	return ids
}

// check requires that each event's id is its source's: a report with that
// event, a domain event that makes it, or, for message.send, no source.
func (ids idSources) check(t *testing.T) (reports, domains, sends int) {
	t.Helper()
	for id, e := range ids.events {
		if r, ok := ids.reports[id]; ok {
			if r.EventName != e.Name || r.ProfileID != e.ProfileID {
				t.Errorf("event %d (%s of %q) has the id of report %+v", id, e.Name, e.ProfileID, r)
			}
			reports++
			continue
		}
		if d, ok := ids.domainEvents[id]; ok {
			if e.ProfileID != "" || e.Params["type"] != d.Type {
				t.Errorf("event %d (%s of %q) has the id of domain event %+v", id, e.Name, e.ProfileID, d)
			}
			domains++
			continue
		}
		if e.Name != store.MessageSendEvent {
			t.Errorf("event %d (%s) has the id of no report or domain event", id, e.Name)
		}
		sends++
	}
	return reports, domains, sends
}

// Event ids are unique across every source of events, reports without an
// event included, and an event made from a report or a domain event has
// that report's or domain event's id.
func testEventIDsAcrossSources(t *testing.T, open opener) {
	s := open(t)
	acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
	named := func(ev store.DomainEvent) store.DomainEvent {
		ev.EventName = "sendingdomain." + ev.Type
		return ev
	}
	createSend(t, s, newSend("s", 10, 4))
	ingest(t, s, []store.Report{rep("d1", store.OutcomeEvent), rep("d2", store.OutcomeNoError)}, nil)
	ingestDomainEvents(t, s, named(platformEvent("w1", "example.com", store.DomainEventWarning, store.DomainWarned, at(0), 3)),
		platformEvent("w2", "example.com", store.DomainEventWarning, store.DomainWarned, at(0), 3))
	ingest(t, s, []store.Report{trk("t1", store.OutcomeEvent), trk("t2", store.OutcomeNoError)}, nil)
	claim(t, s, "d", at(0), time.Minute, 1)
	completeBatch(t, s, "d", "s", 0, accepted("s", []int{0, 1, 2, 3}))
	ingest(t, s, []store.Report{rep("d3", store.OutcomeEvent), trk("t3", store.OutcomeEvent), rep("d4", store.OutcomeUnclassified)}, nil)
	ingestDomainEvents(t, s, named(ownEvent("example.com", store.DomainEventPaused, store.DomainPaused, at(time.Hour))))
	claim(t, s, "d", at(0), time.Minute, 1)
	completeBatch(t, s, "d", "s", 1, accepted("s", []int{5, 6, 7, 8}))
	ingest(t, s, []store.Report{rep("d5", store.OutcomeEvent)}, nil)

	ids := readIDs(t, s, "example.com")
	reports, domains, sends := ids.check(t)
	if reports != 5 || domains != 2 || sends != 8 {
		t.Errorf("events: %d of reports, %d of domain events, %d message.send; want 5, 2, 8", reports, domains, sends)
	}
	if len(ids.reports) != 8 || len(ids.domainEvents) != 3 {
		t.Errorf("%d reports and %d domain events, want 8 and 3", len(ids.reports), len(ids.domainEvents))
	}
}

// However the sources' writes interleave, on any number of connections or
// replicas, no id is handed out twice.
func testEventIDsConcurrent(t *testing.T, open opener) {
	s := open(t)
	acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
	const rounds = 10
	for i := range rounds {
		createSend(t, s, newSend(fmt.Sprint("s", i), 4, 4))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for i := range rounds {
		wg.Go(func() {
			_, err := s.IngestReports(context.Background(), []store.Report{
				rep(fmt.Sprint("d", i), store.OutcomeEvent), rep(fmt.Sprint("n", i), store.OutcomeNoError)}, nil)
			errs <- err
		})
		wg.Go(func() {
			_, err := s.IngestReports(context.Background(), []store.Report{trk(fmt.Sprint("t", i), store.OutcomeEvent)}, nil)
			errs <- err
		})
		wg.Go(func() {
			ev := ownEvent("example.com", store.DomainEventPaused, store.DomainPaused, at(time.Duration(i)*time.Minute))
			ev.EventName = "sendingdomain.paused"
			_, err := s.IngestDomainEvents(context.Background(), []store.DomainEvent{ev}, nil)
			errs <- err
		})
		wg.Go(func() {
			owner := fmt.Sprint("dispatcher-", i)
			cs, err := s.ClaimBatches(context.Background(), owner, at(0), time.Hour, 1)
			for _, c := range cs {
				if err == nil {
					err = s.CompleteBatch(context.Background(), owner, c.SendID, c.Seq, accepted(c.SendID, seqs(c.Recipients)))
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Batches no claimer got in the race are completed now.
	for {
		cs := claim(t, s, "late", at(0), time.Hour, 10)
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			completeBatch(t, s, "late", c.SendID, c.Seq, accepted(c.SendID, seqs(c.Recipients)))
		}
	}
	ids := readIDs(t, s, "example.com")
	reports, domains, sends := ids.check(t)
	if reports != 2*rounds || domains != rounds || sends != 4*rounds {
		t.Errorf("events: %d of reports, %d of domain events, %d message.send; want %d, %d, %d",
			reports, domains, sends, 2*rounds, rounds, 4*rounds)
	}
}
