package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// platformEvent builds one of Infobip's platform events about domain,
// received at recv, that puts the domain in state until a day later.
func platformEvent(eventID, domain, typ string, state store.DomainState, recv time.Time, rate float64) store.DomainEvent {
	ev := store.DomainEvent{
		EventID: eventID, Domain: domain, Type: typ, Time: recv.Add(-time.Minute), ReceiveTime: recv,
		BounceRate: rate, Threshold: 3, Scope: "HOURLY", ConnectionID: "conn-1",
		Payload: []byte(`{"eventId":"` + eventID + `"}`),
		State:   state, Until: recv.Add(24 * time.Hour), Reason: fmt.Sprintf("%s at %.1f %%", typ, rate),
	}
	if typ == store.DomainEventBlocked {
		ev.Threshold, ev.Scope = 5, "DAILY"
	}
	return ev
}

// ownEvent builds one of ibmail's own actions on domain: no event id, and
// a state that does not end by itself.
func ownEvent(domain, typ string, state store.DomainState, recv time.Time) store.DomainEvent {
	return store.DomainEvent{
		Domain: domain, Type: typ, Time: recv, ReceiveTime: recv, BounceRate: 6.5, Threshold: 6, Scope: "HOURLY",
		State: state, Reason: typ + " by ibmail",
	}
}

func ingestDomainEvents(t *testing.T, s store.Store, events ...store.DomainEvent) store.IngestResult {
	t.Helper()
	res, err := s.IngestDomainEvents(context.Background(), events, nil)
	if err != nil {
		t.Fatalf("IngestDomainEvents: %v", err)
	}
	return res
}

func getSendingDomain(t *testing.T, s store.Store, domain string) store.SendingDomain {
	t.Helper()
	d, err := s.GetSendingDomain(context.Background(), domain)
	if err != nil {
		t.Fatalf("GetSendingDomain(%s): %v", domain, err)
	}
	return d
}

// sameDomain compares every field, times as instants.
func sameDomain(t *testing.T, what string, got, want store.SendingDomain) {
	t.Helper()
	if !got.Until.Equal(want.Until) || (!got.Until.IsZero() && got.Until.Location() != time.UTC) {
		t.Errorf("%s: Until = %v, want %v in UTC", what, got.Until, want.Until)
	}
	sameTime(t, what+": UpdateTime", got.UpdateTime, want.UpdateTime)
	got.Until, want.Until, got.UpdateTime, want.UpdateTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Errorf("%s: domain = %+v, want %+v", what, got, want)
	}
}

// A newly stored event applies to its domain unless the domain's state in
// force at the event's receive time is stronger: blocked beats paused
// beats warned, an unblock always applies, and a block whose Until has
// passed is over. A duplicate changes nothing.
func testDomainPrecedence(t *testing.T, open opener) {
	s := open(t)
	const d = "example.com"
	if _, err := s.GetSendingDomain(context.Background(), d); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSendingDomain of an unknown domain: err = %v, want ErrNotFound", err)
	}
	h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }
	warned := func(ev store.DomainEvent, since time.Time) store.SendingDomain {
		return store.SendingDomain{Domain: d, State: store.DomainWarned, Until: ev.Until, Reason: ev.Reason,
			ReportedBounceRate: ev.BounceRate, ReportedThreshold: ev.Threshold, ReportedScope: ev.Scope, UpdateTime: since}
	}
	w1 := platformEvent("w1", d, store.DomainEventWarning, store.DomainWarned, h(0), 3.5)
	b1 := platformEvent("b1", d, store.DomainEventBlocked, store.DomainBlocked, h(1), 5.5)
	w2 := platformEvent("w2", d, store.DomainEventWarning, store.DomainWarned, h(2), 3.8)
	b1Again := b1
	b1Again.ReceiveTime, b1Again.State, b1Again.BounceRate = h(4), store.DomainActive, 9
	w3 := platformEvent("w3", d, store.DomainEventWarning, store.DomainWarned, h(26), 4)
	w4 := platformEvent("w4", d, store.DomainEventWarning, store.DomainWarned, h(28), 4.2)
	b2 := platformEvent("b2", d, store.DomainEventBlocked, store.DomainBlocked, h(29), 7)
	blocked := func(ev store.DomainEvent) store.SendingDomain {
		return store.SendingDomain{Domain: d, State: store.DomainBlocked, Until: ev.Until, Reason: ev.Reason,
			ReportedBounceRate: ev.BounceRate, ReportedThreshold: ev.Threshold, ReportedScope: ev.Scope, UpdateTime: ev.ReceiveTime}
	}
	reported := func(dom store.SendingDomain, ev store.DomainEvent) store.SendingDomain {
		dom.ReportedBounceRate, dom.ReportedThreshold, dom.ReportedScope = ev.BounceRate, ev.Threshold, ev.Scope
		return dom
	}
	paused := func(ev store.DomainEvent, last store.DomainEvent) store.SendingDomain {
		return store.SendingDomain{Domain: d, State: store.DomainPaused, Reason: ev.Reason,
			ReportedBounceRate: last.BounceRate, ReportedThreshold: last.Threshold, ReportedScope: last.Scope, UpdateTime: ev.ReceiveTime}
	}
	p1 := ownEvent(d, store.DomainEventPaused, store.DomainPaused, h(3))
	p2 := ownEvent(d, store.DomainEventPaused, store.DomainPaused, h(27))
	u1 := ownEvent(d, store.DomainEventUnblocked, store.DomainActive, h(30))
	u2 := ownEvent(d, store.DomainEventUnblocked, store.DomainActive, h(31))
	active := func(ev store.DomainEvent, last store.DomainEvent) store.SendingDomain {
		return store.SendingDomain{Domain: d, State: store.DomainActive, Reason: ev.Reason,
			ReportedBounceRate: last.BounceRate, ReportedThreshold: last.Threshold, ReportedScope: last.Scope, UpdateTime: ev.ReceiveTime}
	}

	steps := []struct {
		name       string
		ev         store.DomainEvent
		wantStored bool
		want       store.SendingDomain
	}{
		{"a warning adds the domain, warned", w1, true, warned(w1, h(0))},
		{"a block beats a warning", b1, true, blocked(b1)},
		{"a warning does not lift a block, but is what was reported", w2, true, reported(blocked(b1), w2)},
		{"a pause does not replace a block, nor what was reported", p1, true, reported(blocked(b1), w2)},
		{"a duplicate changes nothing", b1Again, false, reported(blocked(b1), w2)},
		{"once the block's Until has passed, a warning applies", w3, true, warned(w3, h(26))},
		{"a pause beats a warning", p2, true, paused(p2, w3)},
		{"a warning does not lift a pause", w4, true, reported(paused(p2, w3), w4)},
		{"a block beats a pause", b2, true, blocked(b2)},
		{"an unblock always applies", u1, true, active(u1, b2)},
		{"ibmail's own events are never duplicates", u2, true, active(u2, b2)},
	}
	// The same events in one body, interleaved with another domain's,
	// leave each domain as its events one at a time do: a body's events
	// apply in order, a repeat within the body is a duplicate.
	t.Run("in one body", func(t *testing.T) {
		bulk := open(t)
		const other = "other.example"
		var body []store.DomainEvent
		var wantStored []bool
		for i, st := range steps {
			body = append(body, st.ev)
			wantStored = append(wantStored, st.wantStored)
			if i%3 == 0 {
				ev := st.ev
				ev.Domain = other
				if ev.EventID != "" {
					ev.EventID = "other-" + ev.EventID
				}
				body = append(body, ev)
				wantStored = append(wantStored, !strings.HasPrefix(st.name, "a duplicate"))
			}
		}
		body = append(body, b2) // a repeat within the body
		wantStored = append(wantStored, false)
		res := ingestDomainEvents(t, bulk, body...)
		if !reflect.DeepEqual(res.Stored, wantStored) {
			t.Errorf("Stored = %v, want %v", res.Stored, wantStored)
		}
		sameDomain(t, "one body", getSendingDomain(t, bulk, d), steps[len(steps)-1].want)
		one := open(t)
		for i, ev := range body {
			if ev.Domain == other && wantStored[i] {
				ingestDomainEvents(t, one, ev)
			}
		}
		sameDomain(t, "the other domain", getSendingDomain(t, bulk, other), getSendingDomain(t, one, other))
	})

	var stored []store.DomainEvent
	for _, st := range steps {
		res := ingestDomainEvents(t, s, st.ev)
		if got := len(res.Stored) == 1 && res.Stored[0]; got != st.wantStored || res.Accepted+res.Duplicates != 1 || res.Events != 0 {
			t.Errorf("%s: IngestDomainEvents = %+v, want stored %v", st.name, res, st.wantStored)
		}
		if st.wantStored {
			stored = append(stored, st.ev)
		}
		sameDomain(t, st.name, getSendingDomain(t, s, d), st.want)
	}

	// The domain's events, newest first, as they were given.
	evs, err := s.ListDomainEvents(context.Background(), d, 0)
	if err != nil {
		t.Fatalf("ListDomainEvents: %v", err)
	}
	if len(evs) != len(stored) {
		t.Fatalf("ListDomainEvents = %d events, want %d", len(evs), len(stored))
	}
	for i, got := range evs {
		want := stored[len(stored)-1-i]
		if i > 0 && got.ID >= evs[i-1].ID {
			t.Errorf("event %d: id %d not below the newer one's %d", i, got.ID, evs[i-1].ID)
		}
		sameTime(t, fmt.Sprintf("event %d Time", i), got.Time, want.Time)
		sameTime(t, fmt.Sprintf("event %d ReceiveTime", i), got.ReceiveTime, want.ReceiveTime)
		if got.ID <= 0 || got.EventID != want.EventID || got.Domain != want.Domain || got.Type != want.Type ||
			got.BounceRate != want.BounceRate || got.Threshold != want.Threshold || got.Scope != want.Scope ||
			got.ConnectionID != want.ConnectionID || string(got.Payload) != string(want.Payload) {
			t.Errorf("event %d = %+v, want fields of %+v", i, got, want)
		}
	}
	if evs, err := s.ListDomainEvents(context.Background(), d, 2); err != nil || len(evs) != 2 || evs[0].Type != store.DomainEventUnblocked {
		t.Errorf("ListDomainEvents limit 2 = %+v, %v; want the two unblocks", evs, err)
	}
	if evs, err := s.ListDomainEvents(context.Background(), "other.example", 10); err != nil || len(evs) != 0 {
		t.Errorf("ListDomainEvents of another domain = %+v, %v; want none", evs, err)
	}
}

// One call may repeat an event and carry rejected payloads; events of
// several domains apply each to its own.
func testIngestDomainEvents(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	a := platformEvent("e1", "a.example", store.DomainEventWarning, store.DomainWarned, at(0), 3.1)
	b := platformEvent("e2", "b.example", store.DomainEventBlocked, store.DomainBlocked, at(0), 5.1)
	aAgain := a
	aAgain.Domain = "b.example"
	rejected := []store.RejectedPayload{{ReceiveTime: at(0), ContentType: "application/json", Reason: "event 3: no eventId", Body: []byte(`{}`)}}
	res, err := s.IngestDomainEvents(ctx, []store.DomainEvent{a, aAgain, b, a}, rejected)
	if err != nil {
		t.Fatalf("IngestDomainEvents: %v", err)
	}
	if want := (store.IngestResult{Stored: []bool{true, false, true, false}, Accepted: 2, Duplicates: 2}); !reflect.DeepEqual(res, want) {
		t.Errorf("IngestDomainEvents = %+v, want %+v", res, want)
	}
	if got := getSendingDomain(t, s, "a.example"); got.State != store.DomainWarned {
		t.Errorf("a.example = %+v, want warned", got)
	}
	if got := getSendingDomain(t, s, "b.example"); got.State != store.DomainBlocked || got.ReportedBounceRate != 5.1 {
		t.Errorf("b.example = %+v, want blocked by its own event only", got)
	}
	ps, err := s.ListRejectedPayloads(ctx, store.RejectedQuery{})
	if err != nil || len(ps) != 1 || ps[0].Reason != rejected[0].Reason {
		t.Errorf("rejected payloads = %+v, %v; want the one given", ps, err)
	}
	if res, err := s.IngestDomainEvents(ctx, nil, nil); err != nil || len(res.Stored) != 0 || res.Accepted != 0 {
		t.Errorf("IngestDomainEvents(nil) = %+v, %v; want nothing", res, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.IngestDomainEvents(cancelled, []store.DomainEvent{platformEvent("e9", "c.example", store.DomainEventWarning, store.DomainWarned, at(0), 3)}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("IngestDomainEvents with a canceled context: err = %v, want context.Canceled", err)
	}
	if _, err := s.GetSendingDomain(ctx, "c.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a canceled ingest added its domain: err = %v", err)
	}
}

// Every sender account's domain is a sending domain, added active, and a
// new sender of a known domain leaves its state alone.
func testSendingDomains(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	if err := s.CreateConnection(ctx, connection("c", false)); err != nil {
		t.Fatal(err)
	}
	senders := []store.Sender{sender("s1", "c"), sender("s2", "c"), sender("s3", "c"), sender("s4", "c"), sender("s5", "c")}
	senders[0].FromAddress = "News <news@Mail.Example.COM>"
	senders[1].FromAddress = "other@mail.example.com"
	senders[2].FromAddress = "x@b.example"
	senders[3].FromAddress = "no address"
	senders[4].FromAddress = "late@blocked.example"
	ingestDomainEvents(t, s, platformEvent("b", "blocked.example", store.DomainEventBlocked, store.DomainBlocked, at(0), 5.5))
	for _, sd := range senders {
		if err := s.CreateSender(ctx, sd); err != nil {
			t.Fatalf("CreateSender(%s): %v", sd.ID, err)
		}
	}
	if err := s.CreateSender(ctx, sender("s9", "no-such-connection")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateSender of a missing connection: err = %v, want ErrNotFound", err)
	}
	if _, err := s.GetSendingDomain(ctx, "news.example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a sender refused added its domain: err = %v", err)
	}
	activeSince := func(domain string) store.SendingDomain {
		return store.SendingDomain{Domain: domain, State: store.DomainActive, UpdateTime: senders[0].CreateTime}
	}
	sameDomain(t, "mail.example.com", getSendingDomain(t, s, "mail.example.com"), activeSince("mail.example.com"))
	if got := getSendingDomain(t, s, "blocked.example"); got.State != store.DomainBlocked {
		t.Errorf("blocked.example after a sender of it = %+v, want still blocked", got)
	}

	list := func(after string, limit int) []string {
		t.Helper()
		ds, err := s.ListSendingDomains(ctx, after, limit)
		if err != nil {
			t.Fatalf("ListSendingDomains: %v", err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.Domain)
		}
		return out
	}
	tests := []struct {
		after string
		limit int
		want  []string
	}{
		{"", 0, []string{"b.example", "blocked.example", "mail.example.com"}},
		{"", 2, []string{"b.example", "blocked.example"}},
		{"blocked.example", 10, []string{"mail.example.com"}},
		{"mail.example.com", 10, nil},
	}
	for _, tt := range tests {
		if got := list(tt.after, tt.limit); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ListSendingDomains(%q, %d) = %q, want %q", tt.after, tt.limit, got, tt.want)
		}
	}
}

// A domain event with EventName makes a profile event without a profile,
// in the outbox like any; segmentation never lists it.
func testDomainProfileEvents(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
	blocked := platformEvent("b1", "example.com", store.DomainEventBlocked, store.DomainBlocked, at(0), 5.25)
	blocked.EventName = "sendingdomain.blocked"
	warned := platformEvent("w1", "example.com", store.DomainEventWarning, store.DomainWarned, at(0), 3)
	paused := ownEvent("other.example", store.DomainEventPaused, store.DomainPaused, at(time.Minute))
	paused.EventName = "sendingdomain.paused"
	ingest(t, s, []store.Report{event("m1", "p1", "p1@example.com", "sendingdomain.blocked", at(0))}, nil)
	res := ingestDomainEvents(t, s, blocked, warned, paused)
	if res.Accepted != 3 || res.Events != 2 {
		t.Errorf("IngestDomainEvents = %+v, want 3 stored, 2 events", res)
	}
	if res := ingestDomainEvents(t, s, blocked); res.Duplicates != 1 || res.Events != 0 {
		t.Errorf("duplicate: IngestDomainEvents = %+v, want a duplicate without event", res)
	}
	if n := sequenceAll(t, s, testSequencer, 100); n != 3 {
		t.Fatalf("sequenced %d events, want the report's and the two domain events'", n)
	}
	logged := readLog(t, s, store.EventLogQuery{Names: []string{"sendingdomain.blocked", "sendingdomain.paused"}, Limit: 100})
	ids := map[string]int64{}
	for _, de := range append(mustDomainEvents(t, s, "example.com"), mustDomainEvents(t, s, "other.example")...) {
		ids[de.Type] = de.ID
	}
	want := []store.Event{
		{Name: "sendingdomain.blocked", Time: blocked.Time, Params: map[string]string{
			"domain": "example.com", "type": store.DomainEventBlocked, "bounceRate": "5.25", "threshold": "5",
			"scope": "DAILY", "eventId": "b1"}},
		{Name: "sendingdomain.paused", Time: paused.Time, Params: map[string]string{
			"domain": "other.example", "type": store.DomainEventPaused, "bounceRate": "6.5", "threshold": "6",
			"scope": "HOURLY", "eventId": ""}},
	}
	var got []store.Event
	for _, e := range logged {
		if e.ProfileID == "" {
			got = append(got, e.Event)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("domain events in the log = %+v, want %d", got, len(want))
	}
	for i := range want {
		sameTime(t, fmt.Sprintf("domain event %d Time", i), got[i].Time, want[i].Time)
		if got[i].ID != ids[want[i].Params["type"]] || got[i].Name != want[i].Name || got[i].Email != "" ||
			!reflect.DeepEqual(got[i].Params, want[i].Params) {
			t.Errorf("domain event %d = %+v, want id %d (the domain event's) and %+v", i, got[i], ids[want[i].Params["type"]], want[i])
		}
	}

	for _, q := range []store.ProfileQuery{
		{},
		{Names: []string{"sendingdomain.blocked", "sendingdomain.paused"}},
		{Names: []string{"sendingdomain.blocked"}, Since: at(-time.Hour), Until: at(time.Hour)},
	} {
		ms, err := s.SearchProfiles(ctx, q)
		if err != nil {
			t.Fatalf("SearchProfiles(%+v): %v", q, err)
		}
		if len(ms) != 1 || ms[0].ProfileID != "p1" || ms[0].EventCount != 1 {
			t.Errorf("SearchProfiles(%+v) = %+v, want only p1 with its one event", q, ms)
		}
	}
	if evs := listEvents(t, s, store.EventQuery{ProfileID: "p1"}); len(evs) != 1 {
		t.Errorf("events of p1 = %d, want 1", len(evs))
	}
}

func mustDomainEvents(t *testing.T, s store.Store, domain string) []store.DomainEvent {
	t.Helper()
	evs, err := s.ListDomainEvents(context.Background(), domain, 100)
	if err != nil {
		t.Fatalf("ListDomainEvents(%s): %v", domain, err)
	}
	return evs
}

// Newly stored reports with a domain count towards its bounce rate in the
// bucket of their receive time; duplicates, reports without a domain and
// those that count as nothing do not.
func testDomainReportCounts(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	// base starts a bucket; b(i) is i buckets on, plus a little.
	base := store.DomainCountBucketOf(at(0))
	b := func(i int) time.Time { return base.Add(time.Duration(i)*store.DomainCountBucket + time.Second) }
	counted := func(msg, domain string, as store.DomainCount, recv time.Time) store.Report {
		r := rep(msg, store.OutcomeNoError)
		r.Domain, r.CountsAs, r.ReceiveTime = domain, as, recv
		return r
	}
	late := trk("late", store.OutcomeEvent)
	late.NotificationType, late.Domain, late.CountsAs, late.ReceiveTime = "LATE_BOUNCE", "a.example", store.CountBounce, b(2)
	opened := trk("open", store.OutcomeEvent)
	opened.Domain, opened.ReceiveTime = "a.example", b(2)
	ingest(t, s, []store.Report{
		counted("m1", "a.example", store.CountSent, b(0)),
		counted("m2", "a.example", store.CountBounce, b(0)),
		counted("m3", "b.example", store.CountSent, b(0)),
		counted("m4", "a.example", store.CountNone, b(0)),
		counted("m5", "", store.CountBounce, b(0)),
	}, nil)
	ingest(t, s, []store.Report{
		counted("m1", "a.example", store.CountSent, b(1)), // a duplicate
		counted("m6", "a.example", store.CountSent, b(1)),
		counted("m7", "a.example", store.CountBounce, b(1)),
		late, opened,
	}, nil)
	ingest(t, s, []store.Report{late}, nil)

	tests := []struct {
		name  string
		since time.Time
		want  map[string]store.DomainCounts
	}{
		{"all", base, map[string]store.DomainCounts{"a.example": {Reports: 5, Bounces: 3}, "b.example": {Reports: 1}}},
		{"since a bucket", base.Add(store.DomainCountBucket), map[string]store.DomainCounts{"a.example": {Reports: 3, Bounces: 2}}},
		{"since within a bucket: rounded down", b(1).Add(time.Minute), map[string]store.DomainCounts{"a.example": {Reports: 3, Bounces: 2}}},
		{"the last bucket", b(2), map[string]store.DomainCounts{"a.example": {Reports: 1, Bounces: 1}}},
		{"nothing since", b(3), map[string]store.DomainCounts{}},
	}
	for _, tt := range tests {
		got, err := s.DomainReportCounts(ctx, tt.since)
		if err != nil {
			t.Fatalf("DomainReportCounts: %v", err)
		}
		if got == nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: DomainReportCounts(%v) = %v, want %v", tt.name, tt.since, got, tt.want)
		}
	}
	// Pruning before the end of bucket 1 deletes buckets 0 and nothing
	// later; pruning again deletes nothing.
	for _, tt := range []struct {
		before    time.Time
		wantRows  int64
		wantAfter map[string]store.DomainCounts
	}{
		{b(2), 2, map[string]store.DomainCounts{"a.example": {Reports: 3, Bounces: 2}}},
		{b(2), 0, map[string]store.DomainCounts{"a.example": {Reports: 3, Bounces: 2}}},
	} {
		n, err := s.PruneDomainReportCounts(ctx, tt.before)
		if err != nil || n != tt.wantRows {
			t.Errorf("PruneDomainReportCounts(%v) = %d, %v; want %d rows", tt.before, n, err, tt.wantRows)
		}
		got, err := s.DomainReportCounts(ctx, base)
		if err != nil || !reflect.DeepEqual(got, tt.wantAfter) {
			t.Errorf("after pruning: DomainReportCounts = %v, %v; want %v", got, err, tt.wantAfter)
		}
	}
}

// Concurrent ingests of one domain's reports, on however many connections
// or replicas, add up.
func testDomainReportCountsConcurrent(t *testing.T, open opener) {
	s := open(t)
	const callers, n = 8, 25
	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			reports := make([]store.Report, n)
			for j := range reports {
				r := rep(fmt.Sprintf("c%d-%d", i, j), store.OutcomeNoError)
				r.Domain, r.CountsAs = "a.example", store.CountSent
				if j%5 == 0 {
					r.CountsAs = store.CountBounce
				}
				reports[j] = r
			}
			_, err := s.IngestReports(context.Background(), reports, nil)
			errs <- err
		}()
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Fatalf("IngestReports: %v", err)
		}
	}
	got, err := s.DomainReportCounts(context.Background(), at(-time.Hour))
	if err != nil {
		t.Fatalf("DomainReportCounts: %v", err)
	}
	if want := (store.DomainCounts{Reports: callers * n, Bounces: callers * n / 5}); got["a.example"] != want {
		t.Errorf("counts = %+v, want %+v", got["a.example"], want)
	}
}
