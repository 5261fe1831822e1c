package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// trk builds a tracking report with Infobip's eventId id about message
// "msg-<id>"; its Params name id, as rep's name their message, so that
// events can be told apart.
func trk(id string, outcome store.Outcome) store.Report {
	r := store.Report{
		Kind:             store.ReportTracking,
		Key:              store.ReportKey{MessageID: "msg-" + id},
		TrackingKey:      id,
		NotificationType: "COMPLAINED",
		ConnectionID:     "conn-1",
		ProfileID:        "profile-" + id,
		Email:            id + "@example.com",
		Outcome:          outcome,
		Rule:             "tracking-" + id,
		EventTime:        t0,
		ReceiveTime:      t0.Add(time.Second),
		Payload:          []byte(`{"eventId":"` + id + `"}`),
	}
	if outcome == store.OutcomeEvent {
		r.EventName = "newsletter.spambounce"
		r.Params = map[string]string{"message": id, "notificationType": "COMPLAINED"}
	}
	return r
}

// trackingKeys names stored tracking reports by eventId, in the order
// listed.
func trackingKeys(rs []store.StoredReport) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.TrackingKey)
	}
	return out
}

// Tracking reports are deduplicated by eventId, within a call and across
// calls, apart from delivery reports (a tracking report never collides
// with a delivery report, even of the same message), and both kinds may
// come in one call.
func testIngestTracking(t *testing.T, open opener) {
	a, b := trk("a", store.OutcomeEvent), trk("b", store.OutcomeNoError)
	aAgain := trk("a", store.OutcomeEvent)
	aAgain.NotificationType, aAgain.ProfileID, aAgain.Payload = "OPENED", "someone-else", []byte(`{"retry":true}`)
	// A delivery report with the very key fields of a tracking report.
	twin := rep("msg-a", store.OutcomeEvent)
	twin.Key = a.Key
	tests := []struct {
		name          string
		before        []store.Report
		reports       []store.Report
		want          store.IngestResult
		wantTracking  []string // eventIds, newest first
		wantDelivery  []string // message ids, newest first
		wantEventsOfA int
	}{
		{
			name:         "repeat within one call",
			reports:      []store.Report{a, aAgain, b},
			want:         store.IngestResult{Stored: []bool{true, false, true}, Accepted: 2, Duplicates: 1, Events: 1},
			wantTracking: []string{"b", "a"}, wantEventsOfA: 1,
		},
		{
			name:         "repeat across calls",
			before:       []store.Report{a},
			reports:      []store.Report{b, aAgain, a},
			want:         store.IngestResult{Stored: []bool{true, false, false}, Accepted: 1, Duplicates: 2},
			wantTracking: []string{"b", "a"}, wantEventsOfA: 1,
		},
		{
			name: "mixed kinds in one call",
			reports: []store.Report{rep("d1", store.OutcomeEvent), a, rep("d1", store.OutcomeEvent), aAgain,
				rep("d2", store.OutcomeNoError), b},
			want:         store.IngestResult{Stored: []bool{true, true, false, false, true, true}, Accepted: 4, Duplicates: 2, Events: 2},
			wantTracking: []string{"b", "a"}, wantDelivery: []string{"d2", "d1"}, wantEventsOfA: 1,
		},
		{
			name:         "mixed kinds repeated across calls",
			before:       []store.Report{rep("d1", store.OutcomeEvent), a},
			reports:      []store.Report{a, rep("d1", store.OutcomeEvent), b},
			want:         store.IngestResult{Stored: []bool{false, false, true}, Accepted: 1, Duplicates: 2},
			wantTracking: []string{"b", "a"}, wantDelivery: []string{"d1"}, wantEventsOfA: 1,
		},
		{
			name:         "a delivery report of the same key is another report",
			before:       []store.Report{a},
			reports:      []store.Report{twin},
			want:         store.IngestResult{Stored: []bool{true}, Accepted: 1, Events: 1},
			wantTracking: []string{"a"}, wantDelivery: []string{"msg-a"}, wantEventsOfA: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			if tt.before != nil {
				ingest(t, s, tt.before, nil)
			}
			got := withoutIDs(t, ingest(t, s, tt.reports, nil))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("IngestReports = %+v, want %+v", got, tt.want)
			}
			tracking := listReports(t, s, store.ReportQuery{Kind: store.ReportTracking, Limit: 100})
			if got := trackingKeys(tracking); !reflect.DeepEqual(got, tt.wantTracking) {
				t.Errorf("tracking reports = %q, want %q", got, tt.wantTracking)
			}
			for _, r := range tracking {
				if r.Kind != store.ReportTracking {
					t.Errorf("tracking report %s: Kind = %d, want ReportTracking", r.TrackingKey, r.Kind)
				}
				if r.TrackingKey == "a" && (string(r.Payload) != string(a.Payload) || r.NotificationType != a.NotificationType) {
					t.Errorf("report a = %s %s, want the first one's %s %s", r.NotificationType, r.Payload, a.NotificationType, a.Payload)
				}
			}
			delivery := listReports(t, s, store.ReportQuery{Limit: 100})
			if got := reportMessages(delivery); len(got) > 0 || tt.wantDelivery != nil {
				if !reflect.DeepEqual(got, tt.wantDelivery) {
					t.Errorf("delivery reports = %q, want %q", got, tt.wantDelivery)
				}
			}
			for _, r := range delivery {
				if r.Kind != store.ReportDelivery || r.TrackingKey != "" {
					t.Errorf("delivery report %s: Kind %d, TrackingKey %q; want ReportDelivery, none", r.Key.MessageID, r.Kind, r.TrackingKey)
				}
			}
			if evs := listEvents(t, s, store.EventQuery{ProfileID: a.ProfileID, Limit: 100}); len(evs) != tt.wantEventsOfA {
				t.Errorf("events of %s = %d, want %d", a.ProfileID, len(evs), tt.wantEventsOfA)
			}
			if evs := listEvents(t, s, store.EventQuery{ProfileID: "someone-else", Limit: 100}); len(evs) != 0 {
				t.Errorf("a duplicate made %d events", len(evs))
			}
		})
	}
}

// A report of a kind the engines do not know is refused as invalid, and
// nothing of its call is stored.
func testIngestUnknownKind(t *testing.T, open opener) {
	s := open(t)
	odd := rep("odd", store.OutcomeEvent)
	odd.Kind = 7
	_, err := s.IngestReports(context.Background(), []store.Report{rep("ok", store.OutcomeEvent), odd}, nil)
	if !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("IngestReports of kind 7: err = %v, want ErrInvalidArgument", err)
	}
	if rs := listReports(t, s, store.ReportQuery{}); len(rs) != 0 {
		t.Errorf("reports after a refused call = %q, want none", reportMessages(rs))
	}
}

// A stored tracking report lists as it was given, its event has its id,
// and the listing pages and filters like the delivery one.
func testTrackingFields(t *testing.T, open opener) {
	s := open(t)
	want := trk("e1", store.OutcomeEvent)
	want.NotificationType, want.ConnectionID, want.Rule = "LATE_BOUNCE", "conn-9", "late-bounce"
	want.Params = map[string]string{"message": "e1", "notificationType": "LATE_BOUNCE", "url": "https://example.com/x"}
	ingest(t, s, []store.Report{want, trk("e2", store.OutcomeNoError), trk("e3", store.OutcomeUnclassified)}, nil)
	ingest(t, s, []store.Report{trk("e4", store.OutcomeEvent)}, nil)

	all := listReports(t, s, store.ReportQuery{Kind: store.ReportTracking})
	if len(all) != 4 {
		t.Fatalf("tracking reports = %d, want 4", len(all))
	}
	got := all[3]
	if got.ID <= 0 || got.Kind != store.ReportTracking || got.TrackingKey != want.TrackingKey ||
		got.NotificationType != want.NotificationType || got.Key.MessageID != want.Key.MessageID ||
		got.ConnectionID != want.ConnectionID || got.ProfileID != want.ProfileID || got.Email != want.Email ||
		got.Outcome != want.Outcome || got.EventName != want.EventName || got.Rule != want.Rule {
		t.Errorf("tracking report = %+v, want fields of %+v", got, want)
	}
	sameTime(t, "ReceiveTime", got.ReceiveTime, want.ReceiveTime)
	if string(got.Payload) != string(want.Payload) {
		t.Errorf("Payload = %s, want %s", got.Payload, want.Payload)
	}
	evs := listEvents(t, s, store.EventQuery{ProfileID: want.ProfileID})
	if len(evs) != 1 {
		t.Fatalf("events of %s = %d, want 1", want.ProfileID, len(evs))
	}
	if e := evs[0]; e.ID != got.ID || e.ReportID != got.ID || e.Name != want.EventName || !reflect.DeepEqual(e.Params, want.Params) {
		t.Errorf("event = %+v, want id %d (the report's), %s, %v", e, got.ID, want.EventName, want.Params)
	}
	sameTime(t, "event Time", evs[0].Time, want.EventTime)

	ids := map[string]int64{}
	for _, r := range all {
		ids[r.TrackingKey] = r.ID
	}
	tests := []struct {
		name string
		q    store.ReportQuery
		want []string
	}{
		{"by outcome", store.ReportQuery{Kind: store.ReportTracking, Outcome: store.OutcomeEvent}, []string{"e4", "e1"}},
		{"limit", store.ReportQuery{Kind: store.ReportTracking, Limit: 2}, []string{"e4", "e3"}},
		{"before id", store.ReportQuery{Kind: store.ReportTracking, BeforeID: ids["e3"]}, []string{"e2", "e1"}},
		{"before id by outcome", store.ReportQuery{Kind: store.ReportTracking, Outcome: store.OutcomeEvent, BeforeID: ids["e4"]}, []string{"e1"}},
		{"delivery reports apart", store.ReportQuery{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := trackingKeys(listReports(t, s, tt.q)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListReports = %q, want %q", got, tt.want)
			}
		})
	}
}

// A tracking report's event reaches the recipient, the suppression list
// and the outbox exactly as a delivery report's does, once however often
// it comes; the suppression's reason is the report's own when it has one.
func testTrackingSending(t *testing.T, open opener) {
	s := open(t)
	createSend(t, s, newSend("s", 3, 3))
	acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
	about := func(r store.Report, seq int) store.Report {
		r.Recipient = &store.RecipientRef{SendID: "s", Seq: seq}
		return r
	}
	complained := about(trk("c1", store.OutcomeEvent), 0)
	complained.Suppress, complained.SuppressReason = true, "complaint"
	complained.Params["errorName"] = "ignored: the report's reason wins"
	late := about(trk("l1", store.OutcomeEvent), 1)
	late.EventName, late.Suppress, late.EventTime = "newsletter.hardbounce", true, at(time.Hour)
	late.Params = map[string]string{"message": "l1", "errorName": "EC_LATE"}
	ruled := trk("u1", store.OutcomeEvent)
	ruled.EventName, ruled.Suppress, ruled.Params = "newsletter.unsubscribe", true, nil
	delivered := about(event("d1", "p", "p@example.com", "newsletter.delivered", at(2*time.Hour)), 2)
	delivered.Suppress, delivered.SuppressReason = true, "delivery reason"
	reports := []store.Report{complained, late, ruled, delivered}
	ingest(t, s, reports, nil)
	if got := ingest(t, s, reports, nil); got.Duplicates != 4 {
		t.Errorf("second ingest = %+v, want 4 duplicates", got)
	}

	rs := listRecipients(t, s, store.RecipientQuery{SendID: "s", AfterSeq: -1})
	for i, want := range []struct {
		name string
		time time.Time
	}{{complained.EventName, complained.EventTime}, {late.EventName, late.EventTime}, {delivered.EventName, delivered.EventTime}} {
		if rs[i].LastEvent != want.name {
			t.Errorf("recipient %d LastEvent = %q, want %q", i, rs[i].LastEvent, want.name)
		}
		sameTime(t, fmt.Sprintf("recipient %d LastEventTime", i), rs[i].LastEventTime, want.time)
	}

	got := suppressedAmong(t, s, complained.Email, late.Email, ruled.Email, delivered.Email)
	tracked := map[string]int64{}
	for _, r := range listReports(t, s, store.ReportQuery{Kind: store.ReportTracking}) {
		tracked[r.TrackingKey] = r.ID
	}
	want := map[string]store.Suppression{
		complained.Email: {Email: complained.Email, ProfileID: complained.ProfileID, EventName: complained.EventName,
			EventID: tracked["c1"], Reason: "complaint", CreateTime: complained.ReceiveTime},
		late.Email: {Email: late.Email, ProfileID: late.ProfileID, EventName: late.EventName,
			EventID: tracked["l1"], Reason: "EC_LATE", CreateTime: late.ReceiveTime},
		ruled.Email: {Email: ruled.Email, ProfileID: ruled.ProfileID, EventName: ruled.EventName,
			EventID: tracked["u1"], Reason: ruled.Rule, CreateTime: ruled.ReceiveTime},
		delivered.Email: {Email: delivered.Email, ProfileID: delivered.ProfileID, EventName: delivered.EventName,
			EventID: eventID(t, s, "p", "d1"), Reason: "delivery reason", CreateTime: delivered.ReceiveTime},
	}
	sameSuppressions(t, got, want)

	if n := sequenceAll(t, s, testSequencer, 100); n != 4 {
		t.Errorf("sequenced %d events, want the 4 stored once", n)
	}
	// In whichever order the kinds were stored.
	logged := logMessages(readLog(t, s, store.EventLogQuery{Limit: 100}))
	slices.Sort(logged)
	if want := []string{"", "c1", "d1", "l1"}; !reflect.DeepEqual(logged, want) {
		t.Errorf("log = %q, want %q", logged, want)
	}
}

// Ingests of both kinds at once, on any number of connections or
// replicas, store each report and make its event once.
func testIngestTrackingConcurrent(t *testing.T, open opener) {
	s := open(t)
	const callers, n = 8, 20
	reports := make([]store.Report, 0, 2*n)
	for i := range n {
		reports = append(reports, trk(fmt.Sprint("t", i), store.OutcomeEvent), rep(fmt.Sprint("d", i), store.OutcomeEvent))
	}
	results := make([]store.IngestResult, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { results[i], errs[i] = s.IngestReports(context.Background(), reports, nil) })
	}
	wg.Wait()
	accepted, events := 0, 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		accepted += results[i].Accepted
		events += results[i].Events
	}
	if accepted != 2*n || events != 2*n {
		t.Errorf("accepted %d with %d events over all callers, want %d each", accepted, events, 2*n)
	}
	if got := listReports(t, s, store.ReportQuery{Kind: store.ReportTracking, Limit: 1000}); len(got) != n {
		t.Errorf("tracking reports = %d, want %d", len(got), n)
	}
	if got := listReports(t, s, store.ReportQuery{Limit: 1000}); len(got) != n {
		t.Errorf("delivery reports = %d, want %d", len(got), n)
	}
}
