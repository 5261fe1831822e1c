package sandbox_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/ibmail/ibmail/infobip"
	"github.com/ibmail/ibmail/sandbox"
)

func TestOutcomes(t *testing.T) {
	type want struct {
		statusID, statusGroup int
		statusName            string
		errID, errGroup       int
		errName               string
		seedGroup, realGroup  string
		permanent             bool
	}
	bounce := func(id, group int, name string, permanent bool) want {
		seed, real := "BOUNCED", "USER_ERRORS"
		if group == 1 {
			seed, real = "DROPPED", "HANDSET_ERRORS"
		}
		return want{4, 2, "UNDELIVERABLE_REJECTED_OPERATOR", id, group, name, seed, real, permanent}
	}
	tests := []struct {
		to   string
		want want
	}{
		{"hardbounce@example.com", bounce(6012, 2, "EC_HARD_BOUNCE", true)},
		{"HardBounce.7@example.com", bounce(6012, 2, "EC_HARD_BOUNCE", true)},
		{"softbounce-x@example.com", bounce(6011, 2, "EC_SOFT_BOUNCE", false)},
		{"inboxfull@example.com", bounce(6010, 2, "EC_RECIPIENT_INBOX_FULL", false)},
		{"spam+1@example.com", bounce(6042, 2, "EC_SPAM_REVERTED", true)},
		{"suppressed@example.com", bounce(6034, 1, "EC_SUPPRESSED_BOUNCE", true)},
		{"dropped@example.com", bounce(6003, 1, "EC_UNSUBSCRIBED_EMAIL_ADDRESS", true)},
		{"userunknown@example.com", bounce(6006, 2, "EC_INVALID_EMAIL_ADDRESS", true)},
		{"ann@example.com", want{5, 3, "DELIVERED_TO_HANDSET", 0, 0, "NO_ERROR", "OK", "OK", false}},
		// Delivered first; their tracking events follow (tracking_test.go).
		{"complain-1@example.com", want{5, 3, "DELIVERED_TO_HANDSET", 0, 0, "NO_ERROR", "OK", "OK", false}},
		{"LateBounce@example.com", want{5, 3, "DELIVERED_TO_HANDSET", 0, 0, "NO_ERROR", "OK", "OK", false}},
		{"unsubscribe.x@example.com", want{5, 3, "DELIVERED_TO_HANDSET", 0, 0, "NO_ERROR", "OK", "OK", false}},
		{"x-hardbounce@example.com", want{5, 3, "DELIVERED_TO_HANDSET", 0, 0, "NO_ERROR", "OK", "OK", false}},
	}
	for _, generic := range []bool{false, true} {
		t.Run(fmt.Sprintf("generic=%v", generic), func(t *testing.T) {
			e := newEnv(t, sandbox.Options{GenericGroupNames: generic})
			var to []string
			for _, tt := range tests {
				to = append(to, tt.to)
			}
			e.send(t, infobip.SendRequest{To: recipients(to...)})
			e.idle(t)
			got := map[string]infobip.DeliveryReport{}
			for _, r := range e.rcv.reports() {
				got[r.To] = r
			}
			for _, tt := range tests {
				r, ok := got[tt.to]
				if !ok {
					t.Errorf("%s: no report", tt.to)
					continue
				}
				w := tt.want
				group := w.seedGroup
				if generic {
					group = w.realGroup
				}
				gotRow := fmt.Sprint(r.Status.ID, r.Status.GroupID, r.Status.Name, r.Error.ID, r.Error.GroupID, r.Error.Name, r.Error.GroupName, r.Error.Permanent)
				wantRow := fmt.Sprint(w.statusID, w.statusGroup, w.statusName, w.errID, w.errGroup, w.errName, group, w.permanent)
				if gotRow != wantRow {
					t.Errorf("%s: got %s, want %s", tt.to, gotRow, wantRow)
				}
				if wantGroup := map[int]string{2: "UNDELIVERABLE", 3: "DELIVERED"}[w.statusGroup]; r.Status.GroupName != wantGroup {
					t.Errorf("%s: status group %q, want %q", tt.to, r.Status.GroupName, wantGroup)
				}
				if o := sandbox.OutcomeFor(tt.to, generic); o.Error.ID != r.Error.ID || o.Error.GroupName != r.Error.GroupName {
					t.Errorf("%s: OutcomeFor = %+v, report says %+v", tt.to, o.Error, r.Error)
				}
			}
		})
	}
}

var infobipTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$`)

func TestReportFields(t *testing.T) {
	e := newEnv(t, sandbox.Options{ReportBatchSize: 3, Now: func() time.Time { return time.Date(2024, 5, 1, 10, 0, 0, 256e6, time.UTC) }})
	u := e.rcv.srv.URL
	notify := "http://hook:s3cret@" + u[len("http://"):] + "/dlr?token=t0k"
	to := recipients("a1@example.com", "a2@example.com", "a3@example.com", "a4@example.com", "a5@example.com", "a6@example.com", "a7@example.com")
	resp := e.send(t, infobip.SendRequest{
		To: to, BulkID: "bulk-42", NotifyURL: notify, CallbackData: `{"profileId":"p-1"}`,
		CampaignReferenceID: "camp-9", ApplicationID: "app-3", EntityID: "ent-4",
	})
	e.idle(t)
	posts := e.rcv.received()
	var sizes []int
	for _, p := range posts {
		sizes = append(sizes, len(p.reports))
		if p.query.Get("token") != "t0k" || p.user != "hook" || p.pass != "s3cret" {
			t.Errorf("credentials lost: token %q, basic %q:%q", p.query.Get("token"), p.user, p.pass)
		}
	}
	sort.Ints(sizes)
	if fmt.Sprint(sizes) != "[1 3 3]" {
		t.Errorf("batch sizes = %v, want [1 3 3]", sizes)
	}
	ids := map[string]string{}
	for _, m := range resp.Messages {
		ids[m.To] = m.MessageID
	}
	reps := e.rcv.reports()
	if len(reps) != len(to) {
		t.Fatalf("%d reports, want %d", len(reps), len(to))
	}
	for _, r := range reps {
		if r.BulkID != "bulk-42" || r.MessageID != ids[r.To] || r.CallbackData != `{"profileId":"p-1"}` ||
			r.CampaignReferenceID != "camp-9" || r.ApplicationID != "app-3" || r.EntityID != "ent-4" || r.SMSCount != 1 {
			t.Errorf("report does not echo the send: %+v", r)
		}
		if !r.DoneAt.Equal(time.Date(2024, 5, 1, 10, 0, 0, 256e6, time.UTC)) {
			t.Errorf("doneAt = %v", r.DoneAt.Time)
		}
	}
	// The wire form of the timestamps, which Go's RFC 3339 would reject.
	var raw struct {
		Results []map[string]any `json:"results"`
	}
	b, _ := json.Marshal(infobip.DeliveryReports{Results: reps[:1]})
	_ = json.Unmarshal(b, &raw)
	for _, k := range []string{"sentAt", "doneAt"} {
		if s, _ := raw.Results[0][k].(string); !infobipTime.MatchString(s) {
			t.Errorf("%s = %q, want Infobip's 2020-09-08T05:27:59.256+0000 form", k, s)
		}
	}
}

func TestDuplicateReports(t *testing.T) {
	e := newEnv(t, sandbox.Options{Faults: sandbox.Faults{DuplicateRate: 1}, Seed: 7})
	e.send(t, infobip.SendRequest{To: recipients("a@example.com", "b@example.com", "hardbounce@example.com")})
	e.idle(t)
	count := map[string]int{}
	for _, r := range e.rcv.reports() {
		count[r.MessageID]++
	}
	if len(count) != 3 {
		t.Fatalf("reports for %d messages, want 3", len(count))
	}
	for id, n := range count {
		if n != 2 {
			t.Errorf("message %s reported %d times, want 2", id, n)
		}
	}
	if st := e.sb.Stats(); st.DuplicateReports != 3 || st.ReportsPosted != 6 {
		t.Errorf("stats = %+v, want 3 duplicates, 6 posted", st)
	}
}

func TestReportRetries(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	e.rcv.answerFirst(500, 404)
	e.send(t, infobip.SendRequest{To: recipients("a@example.com", "b@example.com")})
	e.idle(t)
	if n := len(e.rcv.reports()); n != 2 {
		t.Errorf("%d reports arrived, want 2 after retries", n)
	}
	if st := e.sb.Stats(); st.ReportPostFailures != 2 || st.ReportsPosted != 2 || st.ReportsAbandoned != 0 {
		t.Errorf("stats = %+v, want 2 failures then 2 posted", st)
	}
}

func TestReportRetriesAreBounded(t *testing.T) {
	e := newEnv(t, sandbox.Options{ReportRetries: 2})
	e.rcv.answerFirst(503, 503, 503, 503)
	e.send(t, infobip.SendRequest{To: recipients("a@example.com")})
	e.idle(t)
	if st := e.sb.Stats(); st.ReportPostFailures != 3 || st.ReportsAbandoned != 1 || st.ReportsPosted != 0 {
		t.Errorf("stats = %+v, want 3 failed tries and 1 abandoned report", st)
	}
}

func TestDefaultNotifyURLAndNone(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	resp, err := e.client.Send(t.Context(), infobip.SendRequest{From: "a@example.com", Subject: "s", To: recipients("b@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	e.idle(t)
	if st := e.sb.Stats(); st.ReportsQueued != 0 || len(resp.Messages) != 1 {
		t.Errorf("a send without notifyUrl queued reports: %+v", st)
	}

	e2 := newEnv(t, sandbox.Options{NotifyURL: toReceiver})
	if _, err := e2.client.Send(t.Context(), infobip.SendRequest{From: "a@example.com", Subject: "s", To: recipients("b@example.com")}); err != nil {
		t.Fatal(err)
	}
	e2.idle(t)
	if n := len(e2.rcv.reports()); n != 1 {
		t.Errorf("%d reports at the default notify URL, want 1", n)
	}
}

func TestCloseDropsPendingReports(t *testing.T) {
	e := newEnv(t, sandbox.Options{ReportDelay: time.Hour})
	e.send(t, infobip.SendRequest{To: recipients("a@example.com")})
	if st := e.sb.Stats(); st.PendingReports != 1 {
		t.Fatalf("pending = %d, want 1", st.PendingReports)
	}
	_ = e.sb.Close()
	e.idle(t)
	if n := len(e.rcv.reports()); n != 0 {
		t.Errorf("%d reports posted after Close", n)
	}
}
