package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// domainEvent is a platform event of Infobip's: a warning, or with blocked
// a block, of domain.
func domainEvent(eventID, domain string, blocked bool, at time.Time) store.DomainEvent {
	ev := store.DomainEvent{EventID: eventID, Domain: domain, Time: at, ReceiveTime: at, BounceRate: 3.5,
		Threshold: 3, Scope: "HOURLY", Type: store.DomainEventWarning, State: store.DomainWarned,
		Until: at.Add(24 * time.Hour), EventName: "domain.bounce_warning", Payload: []byte(`{"eventId":"` + eventID + `"}`)}
	if blocked {
		ev.Type, ev.State, ev.EventName = store.DomainEventBlocked, store.DomainBlocked, "domain.blocked"
	}
	return ev
}

// Platform-events bodies queued with delivery reports share the writer's
// transaction. The ids they take must clash with none the transaction's
// reports took, including the ids the writer counted out for reports that
// turned out duplicates (the report body below ends with one, so the first
// body of domain events starts at that unused id); each stored event has
// one outbox entry; and the later body sees the domain as the earlier one
// left it.
func TestDomainEventsShareCommits(t *testing.T) {
	s := openInternal(t)
	ctx := context.Background()
	if _, err := s.IngestReports(ctx, reports("pre", 2), nil); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	release := blockWriter(t, s)

	type result struct {
		res store.IngestResult
		err error
	}
	var results []chan result
	queue := func(fn func() (store.IngestResult, error)) {
		ch := make(chan result, 1)
		results = append(results, ch)
		go func() {
			res, err := fn()
			ch <- result{res, err}
		}()
		waitQueued(t, s, len(results))
	}
	queue(func() (store.IngestResult, error) {
		return s.IngestReports(ctx, append(reports("mixed", 2), reports("pre", 2)[1]), nil)
	})
	queue(func() (store.IngestResult, error) {
		return s.IngestDomainEvents(ctx, []store.DomainEvent{
			domainEvent("e1", "a.example", false, at), domainEvent("e2", "b.example", false, at),
			domainEvent("e1", "a.example", false, at),
		}, []store.RejectedPayload{{Reason: "domain body"}})
	})
	queue(func() (store.IngestResult, error) {
		return s.IngestDomainEvents(ctx, []store.DomainEvent{
			domainEvent("e1", "a.example", false, at), domainEvent("e3", "a.example", true, at.Add(time.Minute)),
		}, nil)
	})
	queue(func() (store.IngestResult, error) { return s.IngestReports(ctx, reports("after", 2), nil) })
	before := s.w.commits.Load()
	release()

	want := []struct {
		stored []bool
		events int
	}{
		{[]bool{true, true, false}, 2},
		{[]bool{true, true, false}, 2},
		{[]bool{false, true}, 1},
		{[]bool{true, true}, 2},
	}
	for i, ch := range results {
		got := <-ch
		if got.err != nil {
			t.Fatalf("body %d: %v", i, got.err)
		}
		accepted := 0
		for _, st := range want[i].stored {
			if st {
				accepted++
			}
		}
		if !slices.Equal(got.res.Stored, want[i].stored) || got.res.Accepted != accepted ||
			got.res.Duplicates != len(want[i].stored)-accepted || got.res.Events != want[i].events {
			t.Errorf("body %d: %+v; want stored %v, %d events", i, got.res, want[i].stored, want[i].events)
		}
	}
	if got := s.w.commits.Load() - before; got != 2 {
		t.Errorf("%d commits, want 2 (the blocked one and the queued bodies')", got)
	}

	// pre (2), block (1), mixed (2), after (2), and e1, e2, e3.
	const wantEvents = 10
	var events, distinct, outbox, idsAll, idsDistinct int
	if err := s.readDB.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT id) FROM profile_events`).Scan(&events, &distinct); err != nil {
		t.Fatal(err)
	}
	if err := s.readDB.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_outbox o JOIN profile_events e ON e.id = o.event_id`).Scan(&outbox); err != nil {
		t.Fatal(err)
	}
	if events != wantEvents || distinct != wantEvents || outbox != wantEvents {
		t.Errorf("events %d (distinct ids %d), outbox entries %d; want %d each", events, distinct, outbox, wantEvents)
	}
	if err := s.readDB.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT id) FROM
		(SELECT id FROM delivery_reports UNION ALL SELECT id FROM domain_events)`).Scan(&idsAll, &idsDistinct); err != nil {
		t.Fatal(err)
	}
	if idsAll != 10 || idsDistinct != 10 {
		t.Errorf("reports and domain events hold %d ids, %d distinct; want 10 each", idsAll, idsDistinct)
	}
	// Each domain event's profile event has its id, name and params.
	rows, err := s.readDB.QueryContext(ctx, `SELECT d.event_id, e.name, e.profile_id, e.params FROM domain_events d
		JOIN profile_events e ON e.id = d.id ORDER BY d.id`)
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	for rows.Next() {
		var eventID, name, profile string
		var params sql.NullString
		if err := rows.Scan(&eventID, &name, &profile, &params); err != nil {
			t.Fatal(err)
		}
		if profile != "" || !params.Valid {
			t.Errorf("event of %s: profile %q, params %v; want none and the domain event's", eventID, profile, params)
		}
		made = append(made, eventID+" "+name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"e1 domain.bounce_warning", "e2 domain.bounce_warning", "e3 domain.blocked"}; !slices.Equal(made, want) {
		t.Errorf("events of domain events = %q, want %q", made, want)
	}

	for _, tt := range []struct {
		domain string
		state  store.DomainState
	}{{"a.example", store.DomainBlocked}, {"b.example", store.DomainWarned}} {
		d, err := s.GetSendingDomain(ctx, tt.domain)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != tt.state {
			t.Errorf("%s: state %v, want %v", tt.domain, d.State, tt.state)
		}
	}
	ps, err := s.ListRejectedPayloads(ctx, store.RejectedQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Reason != "domain body" {
		t.Errorf("rejected payloads = %+v, want the domain body's", ps)
	}
}
