package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

func testEventFields(t *testing.T, open opener) {
	s := open(t)
	r := event("m1", "p1", "p1@example.com", "newsletter.hardbounce", at(time.Minute))
	r.Params = map[string]string{"message": "m1", "errorName": "EC_MAILBOX_UNAVAILABLE", "smtp": "550 5.1.1"}
	plain := event("m2", "p1", "p1@example.com", "newsletter.softbounce", at(0))
	plain.Params = nil
	ingest(t, s, []store.Report{r, plain}, nil)

	evs := listEvents(t, s, store.EventQuery{ProfileID: "p1"})
	if len(evs) != 2 {
		t.Fatalf("events = %d, want 2", len(evs))
	}
	reports := listReports(t, s, store.ReportQuery{})
	reportID := map[string]int64{}
	for _, sr := range reports {
		reportID[sr.Key.MessageID] = sr.ID
	}
	got := evs[0]
	if got.ID <= 0 {
		t.Errorf("event ID = %d, want positive", got.ID)
	}
	if got.ReportID != reportID["m1"] {
		t.Errorf("ReportID = %d, want the stored report's %d", got.ReportID, reportID["m1"])
	}
	if got.Name != r.EventName || got.ProfileID != r.ProfileID || got.Email != r.Email {
		t.Errorf("event = %q %q %q, want %q %q %q", got.Name, got.ProfileID, got.Email, r.EventName, r.ProfileID, r.Email)
	}
	sameTime(t, "event Time", got.Time, r.EventTime)
	if !reflect.DeepEqual(got.Params, r.Params) {
		t.Errorf("Params = %v, want %v", got.Params, r.Params)
	}
	if len(evs[1].Params) != 0 {
		t.Errorf("Params of an event without any = %v, want empty", evs[1].Params)
	}
	if evs[1].Name != "newsletter.softbounce" {
		t.Errorf("second event Name = %q, want newsletter.softbounce", evs[1].Name)
	}
}

// activity makes profile "p" a history where two events share a time, so
// that ordering ties by id is visible, plus a neighbour profile "q".
func activity() []store.Report {
	return []store.Report{
		event("e1", "p", "p@example.com", "hb", at(0)),
		event("e2", "p", "p@example.com", "open", at(time.Minute)),
		event("e3", "p", "p@example.com", "hb", at(time.Minute)), // tie with e2, later id
		event("e4", "p", "p@example.com", "click", at(2*time.Minute)),
		event("e5", "p", "p@example.com", "hb", at(-time.Minute)), // ingested last, oldest
		event("q1", "q", "q@example.com", "hb", at(time.Hour)),
	}
}

func testListEvents(t *testing.T, open opener) {
	s := open(t)
	ingest(t, s, activity()[:3], nil)
	ingest(t, s, activity()[3:], nil)
	tests := []struct {
		name string
		q    store.EventQuery
		want []string
	}{
		{"all newest first, ties by id", store.EventQuery{ProfileID: "p"}, []string{"e4", "e3", "e2", "e1", "e5"}},
		{"one name", store.EventQuery{ProfileID: "p", Names: []string{"hb"}}, []string{"e3", "e1", "e5"}},
		{"two names", store.EventQuery{ProfileID: "p", Names: []string{"click", "open"}}, []string{"e4", "e2"}},
		{"unknown name", store.EventQuery{ProfileID: "p", Names: []string{"nope"}}, nil},
		{"limit", store.EventQuery{ProfileID: "p", Limit: 2}, []string{"e4", "e3"}},
		{"other profile", store.EventQuery{ProfileID: "q"}, []string{"q1"}},
		{"unknown profile", store.EventQuery{ProfileID: "nobody"}, nil},
		{"after a tie", store.EventQuery{ProfileID: "p", After: &store.EventCursor{Time: at(time.Minute), ID: idOf(t, s, "e3")}}, []string{"e2", "e1", "e5"}},
		{"after with name", store.EventQuery{ProfileID: "p", Names: []string{"hb"}, After: &store.EventCursor{Time: at(time.Minute), ID: idOf(t, s, "e3")}}, []string{"e1", "e5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := messages(listEvents(t, s, tt.q))
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListEvents = %q, want %q", got, tt.want)
			}
		})
	}
}

// idOf finds the event id of message msg of profile p.
func idOf(t *testing.T, s store.Store, msg string) int64 {
	t.Helper()
	for _, e := range listEvents(t, s, store.EventQuery{ProfileID: "p", Limit: 100}) {
		if e.Params["message"] == msg {
			return e.ID
		}
	}
	t.Fatalf("no event %s", msg)
	return 0
}

// Following cursors page by page must give the whole list once, in order.
func testListEventsPaging(t *testing.T, open opener) {
	s := open(t)
	ingest(t, s, activity(), nil)
	want := messages(listEvents(t, s, store.EventQuery{ProfileID: "p"}))
	for _, limit := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var got []string
			q := store.EventQuery{ProfileID: "p", Limit: limit}
			for page := 0; page < 10; page++ {
				evs := listEvents(t, s, q)
				if len(evs) > limit {
					t.Fatalf("page of %d events, limit %d", len(evs), limit)
				}
				if len(evs) == 0 {
					break
				}
				got = append(got, messages(evs)...)
				last := evs[len(evs)-1]
				q.After = &store.EventCursor{Time: last.Time, ID: last.ID}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("paged = %q, want %q", got, want)
			}
		})
	}
}

func testListEventsDefaultLimit(t *testing.T, open opener) {
	s := open(t)
	var reports []store.Report
	for i, m := range msgs("d", 60) {
		reports = append(reports, event(m, "p", "p@example.com", "hb", at(time.Duration(i)*time.Second)))
	}
	ingest(t, s, reports, nil)
	if got := listEvents(t, s, store.EventQuery{ProfileID: "p"}); len(got) != 50 {
		t.Errorf("events with Limit 0 = %d, want the default 50", len(got))
	}
	if got := listEvents(t, s, store.EventQuery{ProfileID: "p", Limit: -1}); len(got) != 50 {
		t.Errorf("events with Limit -1 = %d, want the default 50", len(got))
	}
}

// segments is a population for segmentation: window [at(0), at(10h)).
func segments() []store.Report {
	return []store.Report{
		// p1 changed address: the latest matching event's email counts.
		event("p1a", "p1", "old@example.com", "hb", at(0)), // on Since: inside
		event("p1b", "p1", "new@example.com", "hb", at(time.Hour)),
		event("p1c", "p1", "soft@example.com", "sb", at(2*time.Hour)),
		event("p2a", "p2", "p2@example.com", "hb", at(3*time.Hour)),
		event("p3a", "p3", "p3@example.com", "spam", at(time.Hour)),
		event("p4a", "p4", "p4@example.com", "hb", at(-time.Microsecond)), // before Since
		event("p5a", "p5", "p5@example.com", "hb", at(10*time.Hour)),      // on Until: outside
		event("p5b", "p5", "p5@example.com", "sb", at(9*time.Hour)),
		// p6: two events at one time; the later id gives the email.
		event("p6a", "p6", "first@example.com", "hb", at(4*time.Hour)),
		event("p6b", "p6", "second@example.com", "hb", at(4*time.Hour)),
	}
}

func testSearchProfiles(t *testing.T, open opener) {
	s := open(t)
	ingest(t, s, segments(), nil)
	since, until := at(0), at(10*time.Hour)
	m := func(id, email string, n int, last time.Duration) store.ProfileMatch {
		return store.ProfileMatch{ProfileID: id, Email: email, EventCount: n, LastEventTime: at(last)}
	}
	tests := []struct {
		name string
		q    store.ProfileQuery
		want []store.ProfileMatch
	}{
		{"one name in window", store.ProfileQuery{Names: []string{"hb"}, Since: since, Until: until}, []store.ProfileMatch{
			m("p1", "new@example.com", 2, time.Hour),
			m("p2", "p2@example.com", 1, 3*time.Hour),
			m("p6", "second@example.com", 2, 4*time.Hour),
		}},
		{"two names in window", store.ProfileQuery{Names: []string{"sb", "hb"}, Since: since, Until: until}, []store.ProfileMatch{
			m("p1", "soft@example.com", 3, 2*time.Hour),
			m("p2", "p2@example.com", 1, 3*time.Hour),
			m("p5", "p5@example.com", 1, 9*time.Hour),
			m("p6", "second@example.com", 2, 4*time.Hour),
		}},
		{"repeated name counts once", store.ProfileQuery{Names: []string{"hb", "hb"}, Since: since, Until: until, AfterProfileID: "p5"}, []store.ProfileMatch{
			m("p6", "second@example.com", 2, 4*time.Hour),
		}},
		{"unbounded window", store.ProfileQuery{Names: []string{"hb"}}, []store.ProfileMatch{
			m("p1", "new@example.com", 2, time.Hour),
			m("p2", "p2@example.com", 1, 3*time.Hour),
			m("p4", "p4@example.com", 1, -time.Microsecond),
			m("p5", "p5@example.com", 1, 10*time.Hour),
			m("p6", "second@example.com", 2, 4*time.Hour),
		}},
		{"only Since", store.ProfileQuery{Names: []string{"hb"}, Since: at(3 * time.Hour)}, []store.ProfileMatch{
			m("p2", "p2@example.com", 1, 3*time.Hour),
			m("p5", "p5@example.com", 1, 10*time.Hour),
			m("p6", "second@example.com", 2, 4*time.Hour),
		}},
		{"only Until", store.ProfileQuery{Names: []string{"hb"}, Until: at(time.Hour)}, []store.ProfileMatch{
			m("p1", "old@example.com", 1, 0),
			m("p4", "p4@example.com", 1, -time.Microsecond),
		}},
		{"after profile", store.ProfileQuery{Names: []string{"hb"}, Since: since, Until: until, AfterProfileID: "p1"}, []store.ProfileMatch{
			m("p2", "p2@example.com", 1, 3*time.Hour),
			m("p6", "second@example.com", 2, 4*time.Hour),
		}},
		{"limit", store.ProfileQuery{Names: []string{"hb", "sb"}, Since: since, Until: until, Limit: 2}, []store.ProfileMatch{
			m("p1", "soft@example.com", 3, 2*time.Hour),
			m("p2", "p2@example.com", 1, 3*time.Hour),
		}},
		{"no names: every event", store.ProfileQuery{Since: at(time.Hour), Until: at(3 * time.Hour)}, []store.ProfileMatch{
			m("p1", "soft@example.com", 2, 2*time.Hour),
			m("p3", "p3@example.com", 1, time.Hour),
		}},
		{"empty window", store.ProfileQuery{Names: []string{"hb"}, Since: at(5 * time.Hour), Until: at(5 * time.Hour)}, nil},
		{"unknown name", store.ProfileQuery{Names: []string{"nope"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.SearchProfiles(context.Background(), tt.q)
			if err != nil {
				t.Fatalf("SearchProfiles: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("SearchProfiles = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.ProfileID != w.ProfileID || g.Email != w.Email || g.EventCount != w.EventCount {
					t.Errorf("match %d = %s %s %d, want %s %s %d", i, g.ProfileID, g.Email, g.EventCount, w.ProfileID, w.Email, w.EventCount)
				}
				sameTime(t, "LastEventTime of "+g.ProfileID, g.LastEventTime, w.LastEventTime)
			}
		})
	}
}

// Paging by AfterProfileID must visit each matching profile once, in order.
func testSearchProfilesPaging(t *testing.T, open opener) {
	s := open(t)
	var reports []store.Report
	// Profiles whose events interleave across names, so that a merge of
	// per-name pages would show if it dropped or split a profile.
	for i := range 12 {
		p := fmt.Sprintf("p%02d", i)
		names := []string{"hb", "sb", "spam"}[:1+i%3]
		for j, n := range names {
			reports = append(reports, event(fmt.Sprintf("%s-%d", p, j), p, p+"@example.com", n, at(time.Duration(i*3+j)*time.Minute)))
		}
	}
	ingest(t, s, reports, nil)
	full, err := s.SearchProfiles(context.Background(), store.ProfileQuery{Names: []string{"hb", "sb", "spam"}, Limit: 100})
	if err != nil {
		t.Fatalf("SearchProfiles: %v", err)
	}
	if len(full) != 12 {
		t.Fatalf("profiles = %d, want 12", len(full))
	}
	for i, m := range full {
		if want := 1 + i%3; m.EventCount != want {
			t.Errorf("%s EventCount = %d, want %d", m.ProfileID, m.EventCount, want)
		}
	}
	for _, limit := range []int{1, 2, 5} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var got []store.ProfileMatch
			q := store.ProfileQuery{Names: []string{"spam", "sb", "hb"}, Limit: limit}
			for page := 0; page < 20; page++ {
				ms, err := s.SearchProfiles(context.Background(), q)
				if err != nil {
					t.Fatalf("SearchProfiles: %v", err)
				}
				if len(ms) > limit {
					t.Fatalf("page of %d profiles, limit %d", len(ms), limit)
				}
				if len(ms) == 0 {
					break
				}
				got = append(got, ms...)
				q.AfterProfileID = ms[len(ms)-1].ProfileID
			}
			if !reflect.DeepEqual(got, full) {
				t.Errorf("paged = %+v, want %+v", got, full)
			}
		})
	}
}

func testSearchProfilesDefaultLimit(t *testing.T, open opener) {
	s := open(t)
	var reports []store.Report
	for i, m := range msgs("s", 60) {
		reports = append(reports, event(m, fmt.Sprintf("p%03d", i), "x@example.com", "hb", at(0)))
	}
	ingest(t, s, reports, nil)
	got, err := s.SearchProfiles(context.Background(), store.ProfileQuery{Names: []string{"hb"}})
	if err != nil {
		t.Fatalf("SearchProfiles: %v", err)
	}
	if len(got) != 50 {
		t.Errorf("profiles with Limit 0 = %d, want the default 50", len(got))
	}
}

func testListReports(t *testing.T, open opener) {
	s := open(t)
	ingest(t, s, []store.Report{
		rep("r1", store.OutcomeEvent),
		rep("r2", store.OutcomeNoError),
		rep("r3", store.OutcomeUnclassified),
		rep("r4", store.OutcomeNoError),
	}, nil)
	ingest(t, s, []store.Report{rep("r5", store.OutcomeEvent)}, nil)
	ids := map[string]int64{}
	for _, r := range listReports(t, s, store.ReportQuery{}) {
		ids[r.Key.MessageID] = r.ID
	}
	tests := []struct {
		name string
		q    store.ReportQuery
		want []string
	}{
		{"all newest first", store.ReportQuery{}, []string{"r5", "r4", "r3", "r2", "r1"}},
		{"by outcome", store.ReportQuery{Outcome: store.OutcomeNoError}, []string{"r4", "r2"}},
		{"events", store.ReportQuery{Outcome: store.OutcomeEvent}, []string{"r5", "r1"}},
		{"limit", store.ReportQuery{Limit: 2}, []string{"r5", "r4"}},
		{"before id", store.ReportQuery{BeforeID: ids["r4"], Limit: 2}, []string{"r3", "r2"}},
		{"before id by outcome", store.ReportQuery{Outcome: store.OutcomeEvent, BeforeID: ids["r5"]}, []string{"r1"}},
		{"before the first", store.ReportQuery{BeforeID: ids["r1"]}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reportMessages(listReports(t, s, tt.q))
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListReports = %q, want %q", got, tt.want)
			}
		})
	}
}

func testReportFields(t *testing.T, open opener) {
	s := open(t)
	want := rep("m1", store.OutcomeEvent)
	want.Key = store.ReportKey{MessageID: "m1", StatusID: 5, ErrorID: 10, DoneAt: "2026-03-01T11:00:00.000+0000"}
	want.ConnectionID, want.Rule = "conn-9", "hardbounce-by-error"
	ingest(t, s, []store.Report{want}, nil)
	want.Key.DoneAt = "2026-03-01T11:00:00.000000000Z" // kept as the instant, see store.DoneAtKey
	rs := listReports(t, s, store.ReportQuery{})
	if len(rs) != 1 {
		t.Fatalf("reports = %d, want 1", len(rs))
	}
	got := rs[0]
	if got.ID <= 0 {
		t.Errorf("ID = %d, want positive", got.ID)
	}
	if got.Key != want.Key || got.ConnectionID != want.ConnectionID || got.ProfileID != want.ProfileID ||
		got.Email != want.Email || got.Outcome != want.Outcome || got.EventName != want.EventName || got.Rule != want.Rule {
		t.Errorf("report = %+v, want fields of %+v", got, want)
	}
	sameTime(t, "ReceiveTime", got.ReceiveTime, want.ReceiveTime)
	if string(got.Payload) != string(want.Payload) {
		t.Errorf("Payload = %s, want %s", got.Payload, want.Payload)
	}
}

func testRejectedPayloads(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	first := store.RejectedPayload{ReceiveTime: at(0), ContentType: "text/plain", Reason: "not JSON", Body: []byte("hello")}
	for _, p := range []store.RejectedPayload{first, {Reason: "r2", Body: []byte("2")}, {Reason: "r3"}} {
		if err := s.SaveRejectedPayload(ctx, p); err != nil {
			t.Fatalf("SaveRejectedPayload: %v", err)
		}
	}
	ingest(t, s, nil, []store.RejectedPayload{{Reason: "r4"}})

	list := func(q store.RejectedQuery) []store.RejectedPayload {
		t.Helper()
		ps, err := s.ListRejectedPayloads(ctx, q)
		if err != nil {
			t.Fatalf("ListRejectedPayloads: %v", err)
		}
		return ps
	}
	all := list(store.RejectedQuery{})
	reasons := func(ps []store.RejectedPayload) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Reason)
		}
		return out
	}
	if got, want := reasons(all), []string{"r4", "r3", "r2", "not JSON"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("rejected = %q, want %q", got, want)
	}
	got := all[3]
	if got.ID <= 0 || got.ContentType != first.ContentType || string(got.Body) != string(first.Body) {
		t.Errorf("rejected = %+v, want fields of %+v", got, first)
	}
	sameTime(t, "ReceiveTime", got.ReceiveTime, first.ReceiveTime)
	if got, want := reasons(list(store.RejectedQuery{Limit: 2})), []string{"r4", "r3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("with Limit 2 = %q, want %q", got, want)
	}
	if got, want := reasons(list(store.RejectedQuery{BeforeID: all[1].ID})), []string{"r2", "not JSON"}; !reflect.DeepEqual(got, want) {
		t.Errorf("before %d = %q, want %q", all[1].ID, got, want)
	}
}

func testPing(t *testing.T, open opener) {
	s := open(t)
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// After Close, every call fails, and writes say the store is unavailable
// so that the server answers 503 rather than 400.
func testClose(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	ingest(t, s, []store.Report{rep("a", store.OutcomeEvent)}, nil)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close: no error")
	}
	if _, err := s.IngestReports(ctx, []store.Report{rep("b", store.OutcomeEvent)}, nil); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("IngestReports after Close: err = %v, want ErrUnavailable", err)
	}
	if err := s.SaveRejectedPayload(ctx, store.RejectedPayload{Reason: "x"}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("SaveRejectedPayload after Close: err = %v, want ErrUnavailable", err)
	}
	if _, err := s.ListEvents(ctx, store.EventQuery{ProfileID: "profile-a"}); err == nil {
		t.Error("ListEvents after Close: no error")
	}
}
