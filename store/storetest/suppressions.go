package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ibmail/ibmail/store"
)

// A report about a send's recipient gives it its newest event; duplicates,
// older events and reports without an event leave it be.
func testIngestRecipientEvents(t *testing.T, open opener) {
	s := open(t)
	f := newSend("s", 3, 3) // recipients 0-2 in batch 0
	createSend(t, s, f)
	email := f.recipients[0].Email
	about := func(r store.Report, seq int) store.Report {
		r.Recipient = &store.RecipientRef{SendID: "s", Seq: seq}
		return r
	}
	noEvent := about(rep("n1", store.OutcomeNoError), 0)
	noEvent.ReceiveTime, noEvent.EventTime = at(5*time.Hour), at(5*time.Hour)
	dupLater := about(event("e1", "p", email, "newsletter.click", at(4*time.Hour)), 0)

	steps := []struct {
		name     string
		reports  []store.Report
		wantName string
		wantTime time.Time
	}{
		{"first event", []store.Report{about(event("e1", "p", email, "newsletter.delivered", at(time.Hour)), 0)},
			"newsletter.delivered", at(time.Hour)},
		{"older event", []store.Report{about(event("e2", "p", email, "newsletter.sent", at(30*time.Minute)), 0)},
			"newsletter.delivered", at(time.Hour)},
		{"no event", []store.Report{noEvent}, "newsletter.delivered", at(time.Hour)},
		{"duplicate of a stored report", []store.Report{dupLater}, "newsletter.delivered", at(time.Hour)},
		{"newer event", []store.Report{about(event("e3", "p", email, "newsletter.open", at(2*time.Hour)), 0)},
			"newsletter.open", at(2 * time.Hour)},
		{"same time, ingested later", []store.Report{about(event("e4", "p", email, "newsletter.click", at(2*time.Hour)), 0)},
			"newsletter.click", at(2 * time.Hour)},
		{"older and newer in one call", []store.Report{
			about(event("e5", "p", email, "newsletter.unsubscribe", at(3*time.Hour)), 0),
			about(event("e6", "p", email, "newsletter.open", at(150*time.Minute)), 0),
		}, "newsletter.unsubscribe", at(3 * time.Hour)},
	}
	for _, st := range steps {
		ingest(t, s, st.reports, nil)
		r, err := s.RecipientByEmail(context.Background(), "", "s", email)
		if err != nil {
			t.Fatalf("%s: RecipientByEmail: %v", st.name, err)
		}
		if r.LastEvent != st.wantName {
			t.Errorf("%s: LastEvent = %q, want %q", st.name, r.LastEvent, st.wantName)
		}
		sameTime(t, st.name+": LastEventTime", r.LastEventTime, st.wantTime)
	}
	// The others are untouched, and a report about a recipient that does
	// not exist is stored like any other.
	got := ingest(t, s, []store.Report{about(event("e7", "p", email, "newsletter.open", at(0)), 99)}, nil)
	if got.Accepted != 1 || got.Events != 1 {
		t.Errorf("report about a missing recipient: %+v, want stored with its event", got)
	}
	rs := listRecipients(t, s, store.RecipientQuery{SendID: "s", AfterSeq: 0})
	sameRecipients(t, rs, f.storedRecipients()[1:])
}

// suppressing makes a hard bounce report that suppresses its address.
func suppressing(msg, email string, params map[string]string) store.Report {
	r := event(msg, "profile-"+email, email, "newsletter.hardbounce", at(0))
	r.Rule, r.Params, r.Suppress = "rule-"+msg, params, true
	r.ReceiveTime = at(2 * time.Minute) // the suppression's create time
	return r
}

func suppressedAmong(t *testing.T, s store.Store, emails ...string) map[string]store.Suppression {
	t.Helper()
	m, err := s.SuppressedAmong(context.Background(), emails)
	if err != nil {
		t.Fatalf("SuppressedAmong: %v", err)
	}
	return m
}

// eventID finds the id of the event made from report msg of profile.
func eventID(t *testing.T, s store.Store, profile, msg string) int64 {
	t.Helper()
	for _, e := range listEvents(t, s, store.EventQuery{ProfileID: profile, Limit: 100}) {
		if e.Params["message"] == msg {
			return e.ID
		}
	}
	t.Fatalf("no event of %s for %s", profile, msg)
	return 0
}

func testIngestSuppress(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	const bounced, ruled, plain = "bounced@example.com", "ruled@example.com", "plain@example.com"
	noEvent := rep("n1", store.OutcomeNoError)
	noEvent.Email, noEvent.Suppress = "noevent@example.com", true
	ingest(t, s, []store.Report{
		suppressing("b1", bounced, map[string]string{"message": "b1", "errorName": "EC_MAILBOX_UNAVAILABLE"}),
		suppressing("r1", ruled, map[string]string{"message": "r1"}),
		event("p1", "profile-plain", plain, "newsletter.hardbounce", at(0)), // Suppress not set
		noEvent,
	}, nil)

	got := suppressedAmong(t, s, bounced, ruled, plain, "noevent@example.com", "unknown@example.com")
	want := map[string]store.Suppression{
		bounced: {Email: bounced, ProfileID: "profile-" + bounced, EventName: "newsletter.hardbounce",
			EventID: eventID(t, s, "profile-"+bounced, "b1"), Reason: "EC_MAILBOX_UNAVAILABLE", CreateTime: at(2 * time.Minute)},
		ruled: {Email: ruled, ProfileID: "profile-" + ruled, EventName: "newsletter.hardbounce",
			EventID: eventID(t, s, "profile-"+ruled, "r1"), Reason: "rule-r1", CreateTime: at(2 * time.Minute)},
	}
	sameSuppressions(t, got, want)

	// The first suppression stays: a later cause does not replace it.
	later := suppressing("b2-later", bounced, map[string]string{"message": "b2", "errorName": "EC_SPAM"})
	later.EventName = "newsletter.complaint"
	ingest(t, s, []store.Report{later}, nil)
	sameSuppressions(t, suppressedAmong(t, s, bounced), map[string]store.Suppression{bounced: want[bounced]})

	// Lifted, it stays lifted on a retry of the report that caused it,
	// and comes back with the next new cause.
	if err := s.DeleteSuppression(ctx, bounced); err != nil {
		t.Fatalf("DeleteSuppression: %v", err)
	}
	if err := s.DeleteSuppression(ctx, bounced); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteSuppression: err = %v, want ErrNotFound", err)
	}
	ingest(t, s, []store.Report{suppressing("b1", bounced, map[string]string{"message": "b1", "errorName": "EC_MAILBOX_UNAVAILABLE"})}, nil)
	if got := suppressedAmong(t, s, bounced); len(got) != 0 {
		t.Errorf("a duplicate report suppressed again: %+v", got)
	}
	ingest(t, s, []store.Report{suppressing("b3", bounced, map[string]string{"message": "b3"})}, nil)
	sameSuppressions(t, suppressedAmong(t, s, bounced), map[string]store.Suppression{bounced: {
		Email: bounced, ProfileID: "profile-" + bounced, EventName: "newsletter.hardbounce",
		EventID: eventID(t, s, "profile-"+bounced, "b3"), Reason: "rule-b3", CreateTime: at(2 * time.Minute),
	}})

	// Two causes in one call: the first one ingested wins.
	ingest(t, s, []store.Report{
		suppressing("t1", "twice@example.com", map[string]string{"message": "t1", "errorName": "FIRST"}),
		suppressing("t2", "twice@example.com", map[string]string{"message": "t2", "errorName": "SECOND"}),
	}, nil)
	if got := suppressedAmong(t, s, "twice@example.com")["twice@example.com"]; got.Reason != "FIRST" {
		t.Errorf("of two causes in one call, reason = %q, want FIRST", got.Reason)
	}
}

func sameSuppressions(t *testing.T, got, want map[string]store.Suppression) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("suppressions = %+v, want %+v", got, want)
	}
	for email, w := range want {
		g, ok := got[email]
		if !ok {
			t.Errorf("%s not suppressed", email)
			continue
		}
		sameTime(t, email+" CreateTime", g.CreateTime, w.CreateTime)
		g.CreateTime, w.CreateTime = time.Time{}, time.Time{}
		if w.Origin == 0 {
			w.Origin = store.SuppressionFromEvent // what an event's report makes
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("suppression of %s = %+v, want %+v", email, g, w)
		}
	}
}

// Sends of 100,000 recipients check them all at once; and the list pages.
func testSuppressionLists(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	const n = 1200
	var reports []store.Report
	var asked []string
	for i := range n {
		email := fmt.Sprintf("s%04d@example.com", i)
		reports = append(reports, suppressing(fmt.Sprint("m", i), email, nil))
		asked = append(asked, email, fmt.Sprintf("clean%04d@example.com", i))
	}
	ingest(t, s, reports, nil)
	got := suppressedAmong(t, s, asked...)
	if len(got) != n {
		t.Errorf("SuppressedAmong found %d of %d", len(got), n)
	}
	for i := range n {
		email := fmt.Sprintf("s%04d@example.com", i)
		if got[email].Email != email {
			t.Errorf("%s missing from SuppressedAmong", email)
			break
		}
	}
	if got := suppressedAmong(t, s); len(got) != 0 {
		t.Errorf("SuppressedAmong() = %d entries, want none", len(got))
	}

	list := func(after string, limit int) []string {
		t.Helper()
		ss, err := s.ListSuppressions(ctx, store.SuppressionQuery{AfterEmail: after, Limit: limit})
		if err != nil {
			t.Fatalf("ListSuppressions: %v", err)
		}
		var out []string
		for _, sp := range ss {
			out = append(out, sp.Email)
		}
		return out
	}
	if got := list("", 0); len(got) != 50 || got[0] != "s0000@example.com" || got[49] != "s0049@example.com" {
		t.Errorf("ListSuppressions with Limit 0 = %d from %q, want the default 50 from s0000", len(got), got)
	}
	if got, want := list("s0009@example.com", 2), []string{"s0010@example.com", "s0011@example.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ListSuppressions after s0009 = %q, want %q", got, want)
	}
	if got := list("s1199@example.com", 10); len(got) != 0 {
		t.Errorf("ListSuppressions past the end = %q", got)
	}
	if err := s.DeleteSuppression(ctx, "s0010@example.com"); err != nil {
		t.Fatal(err)
	}
	if got, want := list("s0009@example.com", 2), []string{"s0011@example.com", "s0012@example.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after a delete, ListSuppressions = %q, want %q", got, want)
	}
	var all []string
	for after := ""; ; {
		page := list(after, 500)
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1]
	}
	if len(all) != n-1 {
		t.Errorf("paged through %d suppressions, want %d", len(all), n-1)
	}
}

// After Close, the sending side fails like the rest, as unavailable.
func testCloseSending(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	createSend(t, s, newSend("s", 2, 2))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	f := newSend("t", 2, 2)
	writes := map[string]error{
		"CreateConnection":  s.CreateConnection(ctx, connection("c", true)),
		"CreateSender":      s.CreateSender(ctx, sender("x", "c")),
		"CompleteBatch":     s.CompleteBatch(ctx, "d", "s", 0, accepted("s", []int{0, 1})),
		"ExtendLease":       s.ExtendLease(ctx, "d", "s", 0, at(time.Hour)),
		"DeleteSuppression": s.DeleteSuppression(ctx, "a@example.com"),
	}
	_, _, writes["CreateSend"] = s.CreateSend(ctx, f.send, f.recipients, f.batches)
	_, writes["ClaimBatches"] = s.ClaimBatches(ctx, "d", at(0), time.Minute, 10)
	for name, err := range writes {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s after Close: err = %v, want ErrUnavailable", name, err)
		}
	}
	if _, err := s.GetSend(ctx, "s"); err == nil {
		t.Error("GetSend after Close: no error")
	}
	if _, err := s.SuppressedAmong(ctx, []string{"a@example.com"}); err == nil {
		t.Error("SuppressedAmong after Close: no error")
	}
}

// A suppression lasts its cause's lifetime: expired, it no longer lists
// (unless asked for) and the next cause replaces it; unexpired, it stays
// against later causes. Added suppressions follow the same rule.
func testSuppressionExpiry(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	soft := suppressing("m-soft", "soft@example.com", nil)
	soft.SuppressFor = time.Hour
	forever := suppressing("m-hard", "hard@example.com", nil)
	ingest(t, s, []store.Report{soft, forever}, nil)
	got := suppressedAmong(t, s, "soft@example.com", "hard@example.com")
	if e := got["soft@example.com"].ExpireTime; !e.Equal(soft.ReceiveTime.Add(time.Hour)) {
		t.Errorf("soft: ExpireTime = %v, want receive time + 1h (%v)", e, soft.ReceiveTime.Add(time.Hour))
	}
	if e := got["hard@example.com"].ExpireTime; !e.IsZero() {
		t.Errorf("hard: ExpireTime = %v, want none", e)
	}
	list := func(now time.Time, expired bool) []string {
		t.Helper()
		ss, err := s.ListSuppressions(ctx, store.SuppressionQuery{Limit: 10, Now: now, IncludeExpired: expired})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, sp := range ss {
			out = append(out, sp.Email)
		}
		return out
	}
	later := soft.ReceiveTime.Add(2 * time.Hour)
	if got, want := list(later, false), []string{"hard@example.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("listed after the expiry = %v, want %v", got, want)
	}
	if got, want := list(later, true), []string{"hard@example.com", "soft@example.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("listed with expired = %v, want %v", got, want)
	}

	// A later cause: replaces the expired one, not the permanent one.
	again := suppressing("m-soft-2", "soft@example.com", nil)
	again.ReceiveTime, again.EventTime = later, later
	hardAgain := suppressing("m-hard-2", "hard@example.com", nil)
	hardAgain.ReceiveTime = later
	ingest(t, s, []store.Report{again, hardAgain}, nil)
	got = suppressedAmong(t, s, "soft@example.com", "hard@example.com")
	if sp := got["soft@example.com"]; !sp.CreateTime.Equal(later) || !sp.ExpireTime.IsZero() || !sp.Active(later.Add(1000*time.Hour)) {
		t.Errorf("soft after a new cause = %+v, want it made at %v for ever", sp, later)
	}
	if sp := got["hard@example.com"]; sp.CreateTime.Equal(later) {
		t.Errorf("hard was replaced by a later cause: %+v", sp)
	}

	// Added suppressions: an import of one new, one permanent address.
	n, err := s.AddSuppressions(ctx, []store.Suppression{
		{Email: "new@example.com", Reason: "imported", CreateTime: later, Origin: store.SuppressionFromImport, ExpireTime: later.Add(time.Minute)},
		{Email: "hard@example.com", Reason: "imported", CreateTime: later, Origin: store.SuppressionFromImport},
		{Email: "limit@example.com", Reason: "soft-bounce limit", CreateTime: later, Origin: store.SuppressionFromSoftBounceLimit, CauseEventIDs: []int64{4, 5, 6}},
	})
	if err != nil || n != 2 {
		t.Fatalf("AddSuppressions = %d, %v; want 2 added", n, err)
	}
	got = suppressedAmong(t, s, "new@example.com", "hard@example.com", "limit@example.com")
	if sp := got["new@example.com"]; sp.Origin != store.SuppressionFromImport || !sp.ExpireTime.Equal(later.Add(time.Minute)) || sp.Active(later.Add(time.Minute)) {
		t.Errorf("imported = %+v, want origin import expiring a minute later", sp)
	}
	if sp := got["limit@example.com"]; sp.Origin != store.SuppressionFromSoftBounceLimit || !reflect.DeepEqual(sp.CauseEventIDs, []int64{4, 5, 6}) {
		t.Errorf("soft-bounce limit = %+v, want its three causes", sp)
	}
	if sp := got["hard@example.com"]; sp.Origin != store.SuppressionFromEvent {
		t.Errorf("hard = %+v, want the event's suppression kept", sp)
	}
}

// A reason of megabytes (Infobip's error name, as a hostile webhook body
// may hold it) is cut to MaxSuppressionReasonBytes on a rune boundary.
func testSuppressionReasonBounded(t *testing.T, open opener) {
	s := open(t)
	long := suppressing("m-long", "long@example.com", map[string]string{"errorName": strings.Repeat("é", 1<<20)})
	ingest(t, s, []store.Report{long}, nil)
	got := suppressedAmong(t, s, "long@example.com")["long@example.com"].Reason
	if len(got) > store.MaxSuppressionReasonBytes || !utf8.ValidString(got) || !strings.HasPrefix(got, "éé") {
		t.Errorf("reason of %d bytes (valid UTF-8: %v), want at most %d", len(got), utf8.ValidString(got), store.MaxSuppressionReasonBytes)
	}
}
