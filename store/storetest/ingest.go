package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/ibmail/ibmail/store"
)

func testIngest(t *testing.T, open opener) {
	a := rep("a", store.OutcomeEvent)
	b := rep("b", store.OutcomeNoError)
	c := rep("c", store.OutcomeUnclassified)
	aAgain := rep("a", store.OutcomeEvent)
	aAgain.Payload = []byte(`{"retry":true}`)
	aAgain.ProfileID = "someone-else"
	keyVariants := func() []store.Report {
		s, e, d := rep("k", store.OutcomeEvent), rep("k", store.OutcomeEvent), rep("k", store.OutcomeEvent)
		s.Key.StatusID = 7
		e.Key.ErrorID = 10
		d.Key.DoneAt = "2026-03-01T11:00:01.000+0000"
		return []store.Report{rep("k", store.OutcomeEvent), s, e, d}
	}

	// One instant written as Infobip, RFC 3339 and another zone do: one
	// key (issue 9, defect 10). A different instant is another report.
	oneInstant := func() []store.Report {
		var rs []store.Report
		for _, d := range []string{"2026-03-01T10:00:00.256+0000", "2026-03-01T10:00:00.256Z",
			"2026-03-01T12:00:00.256+0200", "2026-03-01T10:00:00.256000000Z", "2026-03-01T10:00:00.257+0000"} {
			r := rep("i", store.OutcomeEvent)
			r.Key.DoneAt = d
			rs = append(rs, r)
		}
		return rs
	}

	tests := []struct {
		name    string
		before  []store.Report // ingested in an earlier call
		reports []store.Report
		want    store.IngestResult
		// wantReports lists the stored reports' message ids, newest first,
		// and wantPayload the payload kept for message "a".
		wantReports []string
		// wantEvents counts events per profile.
		wantEvents map[string]int
	}{
		{
			name:        "events only for OutcomeEvent",
			reports:     []store.Report{a, b, c},
			want:        store.IngestResult{Stored: []bool{true, true, true}, Accepted: 3, Events: 1},
			wantReports: []string{"c", "b", "a"},
			wantEvents:  map[string]int{a.ProfileID: 1, b.ProfileID: 0, c.ProfileID: 0},
		},
		{
			name:        "repeat within one call",
			reports:     []store.Report{a, aAgain, b},
			want:        store.IngestResult{Stored: []bool{true, false, true}, Accepted: 2, Duplicates: 1, Events: 1},
			wantReports: []string{"b", "a"},
			wantEvents:  map[string]int{a.ProfileID: 1, aAgain.ProfileID: 0},
		},
		{
			name:        "repeat across calls",
			before:      []store.Report{a},
			reports:     []store.Report{aAgain, b, a},
			want:        store.IngestResult{Stored: []bool{false, true, false}, Accepted: 1, Duplicates: 2},
			wantReports: []string{"b", "a"},
			wantEvents:  map[string]int{a.ProfileID: 1, aAgain.ProfileID: 0},
		},
		{
			name:        "every key field counts",
			reports:     keyVariants(),
			want:        store.IngestResult{Stored: []bool{true, true, true, true}, Accepted: 4, Events: 4},
			wantReports: []string{"k", "k", "k", "k"},
			wantEvents:  map[string]int{"profile-k": 4},
		},
		{
			name:        "doneAt keyed on the instant",
			reports:     oneInstant(),
			want:        store.IngestResult{Stored: []bool{true, false, false, false, true}, Accepted: 2, Duplicates: 3, Events: 2},
			wantReports: []string{"i", "i"},
			wantEvents:  map[string]int{"profile-i": 2},
		},
		{
			name:        "doneAt keyed on the instant across calls",
			before:      oneInstant()[2:3],
			reports:     oneInstant()[:2],
			want:        store.IngestResult{Stored: []bool{false, false}, Duplicates: 2},
			wantReports: []string{"i"},
			wantEvents:  map[string]int{"profile-i": 1},
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
			stored := listReports(t, s, store.ReportQuery{Limit: 100})
			if got := reportMessages(stored); !reflect.DeepEqual(got, tt.wantReports) {
				t.Errorf("stored reports = %q, want %q", got, tt.wantReports)
			}
			for _, r := range stored {
				if r.Key.MessageID == "a" && string(r.Payload) != string(a.Payload) {
					t.Errorf("payload of a = %s, want the first one %s", r.Payload, a.Payload)
				}
			}
			for profile, want := range tt.wantEvents {
				evs := listEvents(t, s, store.EventQuery{ProfileID: profile, Limit: 100})
				if len(evs) != want {
					t.Errorf("events of %s = %d, want %d", profile, len(evs), want)
				}
			}
		})
	}
}

// Webhook retries can arrive in parallel; however the calls interleave,
// each report must be stored, and its event made, exactly once.
func testIngestConcurrentDuplicates(t *testing.T, open opener) {
	s := open(t)
	const callers, n = 16, 20
	reports := make([]store.Report, n)
	for i, m := range msgs("dup", n) {
		reports[i] = event(m, "profile-dup", "dup@example.com", "newsletter.hardbounce", at(0))
	}
	results := make([]store.IngestResult, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			results[i], errs[i] = s.IngestReports(context.Background(), reports, nil)
		})
	}
	wg.Wait()
	var sum store.IngestResult
	storedBy := make([]int, n)
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		sum.Accepted += res.Accepted
		sum.Duplicates += res.Duplicates
		sum.Events += res.Events
		for j, ok := range res.Stored {
			if ok {
				storedBy[j]++
			}
		}
	}
	want := store.IngestResult{Accepted: n, Duplicates: n * (callers - 1), Events: n}
	if sum.Accepted != want.Accepted || sum.Duplicates != want.Duplicates || sum.Events != want.Events {
		t.Errorf("summed results = %+v, want %+v", sum, want)
	}
	for j, k := range storedBy {
		if k != 1 {
			t.Errorf("report %d reported stored by %d callers, want 1", j, k)
		}
	}
	if got := listEvents(t, s, store.EventQuery{ProfileID: "profile-dup", Limit: 1000}); len(got) != n {
		t.Errorf("events = %d, want %d", len(got), n)
	}
	if got := listReports(t, s, store.ReportQuery{Limit: 1000}); len(got) != n {
		t.Errorf("reports = %d, want %d", len(got), n)
	}
}

// Many bodies at once (what group commit batches) must each get their own
// result and all be stored.
func testIngestConcurrentDistinct(t *testing.T, open opener) {
	s := open(t)
	const callers, n = 8, 50
	var wg sync.WaitGroup
	errs := make([]error, callers)
	results := make([]store.IngestResult, callers)
	for i := range callers {
		wg.Go(func() {
			reports := make([]store.Report, n)
			for j, m := range msgs(fmt.Sprintf("c%d-", i), n) {
				reports[j] = event(m, fmt.Sprintf("p%d", i), "x@example.com", "newsletter.open", at(0))
			}
			results[i], errs[i] = s.IngestReports(context.Background(), reports, nil)
		})
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if got := results[i]; got.Accepted != n || got.Events != n || got.Duplicates != 0 || len(got.Stored) != n {
			t.Errorf("caller %d result = %+v, want %d accepted with events", i, got, n)
		}
		if got := listEvents(t, s, store.EventQuery{ProfileID: fmt.Sprintf("p%d", i), Limit: 1000}); len(got) != n {
			t.Errorf("events of caller %d = %d, want %d", i, len(got), n)
		}
	}
}

func testIngestWithRejected(t *testing.T, open opener) {
	s := open(t)
	rejected := []store.RejectedPayload{
		{ReceiveTime: at(0), ContentType: "application/json", Reason: "report 2: no messageId", Body: []byte(`{"bad":1}`)},
		{ReceiveTime: at(0), ContentType: "application/json", Reason: "report 3: no messageId", Body: []byte(`{"bad":2}`)},
	}
	got := ingest(t, s, []store.Report{rep("a", store.OutcomeEvent)}, rejected)
	if got.Accepted != 1 || got.Events != 1 {
		t.Errorf("IngestReports = %+v, want 1 accepted with its event", got)
	}
	if rs := listReports(t, s, store.ReportQuery{}); len(rs) != 1 {
		t.Errorf("reports = %d, want 1", len(rs))
	}
	ps, err := s.ListRejectedPayloads(context.Background(), store.RejectedQuery{})
	if err != nil {
		t.Fatalf("ListRejectedPayloads: %v", err)
	}
	var reasons []string
	for _, p := range ps {
		reasons = append(reasons, p.Reason)
	}
	want := []string{"report 3: no messageId", "report 2: no messageId"}
	if !reflect.DeepEqual(reasons, want) {
		t.Errorf("rejected reasons = %q, want %q", reasons, want)
	}
}

func testIngestEmpty(t *testing.T, open opener) {
	s := open(t)
	got := ingest(t, s, nil, nil)
	if got.Accepted != 0 || got.Duplicates != 0 || got.Events != 0 || len(got.Stored) != 0 {
		t.Errorf("IngestReports(nil) = %+v, want zero", got)
	}
}

func testIngestCanceled(t *testing.T, open opener) {
	s := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.IngestReports(ctx, []store.Report{rep("a", store.OutcomeEvent)}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("IngestReports with a canceled context: err = %v, want context.Canceled", err)
	}
	if err := s.SaveRejectedPayload(ctx, store.RejectedPayload{Reason: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("SaveRejectedPayload with a canceled context: err = %v, want context.Canceled", err)
	}
	if rs := listReports(t, s, store.ReportQuery{}); len(rs) != 0 {
		t.Errorf("reports after a canceled ingest = %d, want 0", len(rs))
	}
}
