package sandbox_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/infobip"
	"github.com/ibmail/ibmail/sandbox"
)

var sentAt = time.Date(2024, 5, 1, 10, 0, 0, 256e6, time.UTC)

// checkReportsFirst fails for any tracking event that arrived before a
// delivered report of its message and recipient.
func checkReportsFirst(t *testing.T, h *hooks) {
	t.Helper()
	delivered := map[string]bool{}
	for _, p := range h.received() {
		switch p.path {
		case dlrPath:
			for _, r := range p.reports {
				if r.Status.GroupName == "DELIVERED" {
					delivered[r.MessageID+" "+strings.ToLower(r.To)] = true
				}
			}
		case trackPath:
			ev := p.tracking
			if !delivered[ev.MessageID+" "+strings.ToLower(ev.Recipient)] {
				t.Errorf("%s of %s arrived before its delivered report", ev.NotificationType, ev.Recipient)
			}
		}
	}
}

func TestTrackingPrefixes(t *testing.T) {
	h := newHooks(t)
	e := newEnv(t, sandbox.Options{Now: func() time.Time { return sentAt }, ReportBatchSize: 2})
	// The first report POSTs are refused: the events must wait for the
	// retries that succeed.
	h.answerFirst(dlrPath, 500, 503)
	to := []string{"complain-1@example.com", "LateBounce.2@example.com", "unsubscribe+3@example.com", "ann@example.com", "hardbounce@example.com"}
	resp := e.send(t, infobip.SendRequest{
		To: recipients(to...), NotifyURL: h.url(dlrPath), TrackingURL: h.url(trackPath + "?token=tr4ck"),
		TrackOpens: boolp(false), TrackClicks: boolp(false),
		BulkID: "bulk-7", CallbackData: `{"profileId":"p-1"}`, CampaignReferenceID: "camp-9", ApplicationID: "app-3", EntityID: "ent-4",
	})
	e.idle(t)
	ids := map[string]string{}
	for _, m := range resp.Messages {
		ids[m.To] = m.MessageID
	}
	want := map[string]string{to[0]: sandbox.Complained, to[1]: sandbox.LateBounce, to[2]: sandbox.Unsubscribed}
	events := h.trackingEvents()
	if len(events) != len(want) {
		t.Fatalf("%d tracking events, want %d: %+v", len(events), len(want), events)
	}
	seen := map[string]bool{}
	for i, ev := range events {
		raw := h.on(trackPath)[i].raw
		if got := want[ev.Recipient]; ev.NotificationType != got {
			t.Errorf("%s: %s, want %q", ev.Recipient, ev.NotificationType, got)
		}
		if !uuidPattern.MatchString(ev.EventID) || seen[ev.EventID] {
			t.Errorf("%s: eventId %q, want a fresh UUID", ev.Recipient, ev.EventID)
		}
		seen[ev.EventID] = true
		if ev.MessageID != ids[ev.Recipient] || ev.BulkID != "bulk-7" || ev.Domain != "example.com" ||
			ev.SendDateTime != sentAt.UnixMilli() || ev.CallbackData != `{"profileId":"p-1"}` ||
			ev.CampaignReferenceID != "camp-9" || ev.ApplicationID != "app-3" || ev.EntityID != "ent-4" {
			t.Errorf("%s: event does not echo the send: %+v", ev.Recipient, ev)
		}
		if _, isString := raw["messageId"].(string); !isString {
			t.Errorf("%s: messageId %v, want a string as Infobip's examples", ev.Recipient, raw["messageId"])
		}
		hasSender, hasReader := raw["sender"] != nil, raw["geoLocation"] != nil && raw["recipientInfo"] != nil
		if wantSender := ev.NotificationType != sandbox.Unsubscribed; hasSender != wantSender || hasReader == wantSender {
			t.Errorf("%s: sender present %v, reader present %v; want sender only for complaints and late bounces", ev.NotificationType, hasSender, hasReader)
		}
		if hasSender && ev.Sender != "news@example.com" {
			t.Errorf("%s: sender %q, want the from address", ev.NotificationType, ev.Sender)
		}
		if raw["url"] != nil {
			t.Errorf("%s: url %v, want none but on clicks", ev.NotificationType, raw["url"])
		}
	}
	for _, p := range h.on(trackPath) {
		if p.query.Get("token") != "tr4ck" {
			t.Errorf("trackingUrl token lost: %v", p.query)
		}
	}
	for _, addr := range to[:4] {
		if r, ok := h.reportFor(addr); !ok || r.Status.GroupName != "DELIVERED" || r.Error.ID != 0 {
			t.Errorf("%s: report %+v, want delivered", addr, r)
		}
	}
	checkReportsFirst(t, h)
	st := e.sb.Stats()
	if st.TrackingQueued != 3 || st.TrackingPosted != 3 || st.TrackingDuplicates != 0 || st.ReportPostFailures != 2 {
		t.Errorf("stats = %+v, want 3 tracking events queued and posted after 2 refused report POSTs", st)
	}
}

func TestOpensAndClicksFollowTheSend(t *testing.T) {
	const link = `<p><a href="mailto:x@example.com">mail</a> <a class=b HREF='https://shop.example.com/spring?a=1&amp;b=2'>Spring</a></p>`
	tests := []struct {
		name               string
		track, opens, clks *bool
		html               string
		want               []string // event types of a delivered recipient, in order
		wantURL            string
	}{
		{"nothing said: the domain's settings, on", nil, nil, nil, link, []string{sandbox.Opened, sandbox.Clicked}, "https://shop.example.com/spring?a=1&b=2"},
		{"track off", boolp(false), nil, nil, link, nil, ""},
		{"track off, opens on", boolp(false), boolp(true), nil, link, []string{sandbox.Opened}, ""},
		{"track on, clicks off", boolp(true), nil, boolp(false), link, []string{sandbox.Opened}, ""},
		{"opens off, clicks on", nil, boolp(false), boolp(true), link, []string{sandbox.Clicked}, "https://shop.example.com/spring?a=1&b=2"},
		{"clicks without a link", nil, boolp(false), boolp(true), "<p>No links</p>", []string{sandbox.Clicked}, sandbox.DefaultClickURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHooks(t)
			e := newEnv(t, sandbox.Options{})
			e.send(t, infobip.SendRequest{
				To: recipients("ann@example.com", "bob@example.com", "hardbounce@example.com", "complain@example.com"), HTML: tt.html,
				NotifyURL: h.url(dlrPath), TrackingURL: h.url(trackPath), Track: tt.track, TrackOpens: tt.opens, TrackClicks: tt.clks,
			})
			e.idle(t)
			got := map[string][]string{}
			for _, ev := range h.trackingEvents() {
				got[ev.Recipient] = append(got[ev.Recipient], ev.NotificationType)
				if ev.NotificationType == sandbox.Clicked && ev.URL != tt.wantURL {
					t.Errorf("click url %q, want %q", ev.URL, tt.wantURL)
				}
			}
			for _, addr := range []string{"ann@example.com", "bob@example.com"} {
				if !slices.Equal(got[addr], tt.want) {
					t.Errorf("%s: events %v, want %v", addr, got[addr], tt.want)
				}
			}
			if len(got["hardbounce@example.com"]) != 0 {
				t.Errorf("a bounced recipient got %v", got["hardbounce@example.com"])
			}
			if c := got["complain@example.com"]; !slices.Equal(c, []string{sandbox.Complained}) {
				t.Errorf("the complaining recipient got %v, want only COMPLAINED", c)
			}
			checkReportsFirst(t, h)
		})
	}
}

func TestTrackingDuplicatesKeepTheEventID(t *testing.T) {
	h := newHooks(t)
	e := newEnv(t, sandbox.Options{Seed: 11, Faults: sandbox.Faults{DuplicateRate: 1}})
	e.send(t, infobip.SendRequest{
		To: recipients("ann@example.com", "complain@example.com"), HTML: `<a href="https://example.com/x">x</a>`,
		NotifyURL: h.url(dlrPath), TrackingURL: h.url(trackPath),
	})
	e.idle(t)
	events := h.trackingEvents()
	count := map[string]int{}
	kinds := map[string]string{}
	for _, ev := range events {
		count[ev.EventID]++
		if k, ok := kinds[ev.EventID]; ok && k != ev.NotificationType+ev.Recipient {
			t.Errorf("eventId %s names two events", ev.EventID)
		}
		kinds[ev.EventID] = ev.NotificationType + ev.Recipient
	}
	// ann: an open and a click; complain: a complaint; each twice.
	if len(events) != 6 || len(count) != 3 {
		t.Fatalf("%d events with %d eventIds, want 6 with 3: %+v", len(events), len(count), events)
	}
	for id, n := range count {
		if n != 2 {
			t.Errorf("eventId %s posted %d times, want 2", id, n)
		}
	}
	// A message's events stay in order: the open and its copy before the
	// click.
	var ann []string
	for _, ev := range events {
		if ev.Recipient == "ann@example.com" {
			ann = append(ann, ev.NotificationType)
		}
	}
	if want := []string{sandbox.Opened, sandbox.Opened, sandbox.Clicked, sandbox.Clicked}; !slices.Equal(ann, want) {
		t.Errorf("ann's events %v, want %v", ann, want)
	}
	if st := e.sb.Stats(); st.TrackingQueued != 3 || st.TrackingDuplicates != 3 || st.TrackingPosted != 6 {
		t.Errorf("stats = %+v, want 3 queued, 3 duplicates, 6 posted", st)
	}
}

func TestTrackingRetries(t *testing.T) {
	t.Run("refused, then accepted", func(t *testing.T) {
		h := newHooks(t)
		e := newEnv(t, sandbox.Options{})
		h.answerFirst(trackPath, 500, 401)
		e.send(t, infobip.SendRequest{To: recipients("complain@example.com"), NotifyURL: h.url(dlrPath), TrackingURL: h.url(trackPath)})
		e.idle(t)
		if n := len(h.trackingEvents()); n != 1 {
			t.Errorf("%d events arrived, want 1 after retries", n)
		}
		if st := e.sb.Stats(); st.TrackingPostFailures != 2 || st.TrackingPosted != 1 || st.TrackingAbandoned != 0 {
			t.Errorf("stats = %+v, want 2 failures then 1 posted", st)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		h := newHooks(t)
		e := newEnv(t, sandbox.Options{ReportRetries: 1})
		h.answerFirst(trackPath, 503, 503, 503)
		e.send(t, infobip.SendRequest{To: recipients("complain@example.com", "unsubscribe@example.com"),
			NotifyURL: h.url(dlrPath), TrackingURL: h.url(trackPath)})
		e.idle(t)
		// Two tries each: one event given up, and the other's two tries
		// absorb the third refusal and then succeed.
		if st := e.sb.Stats(); st.TrackingPostFailures != 3 || st.TrackingAbandoned != 1 || st.TrackingPosted != 1 {
			t.Errorf("stats = %+v, want 3 failed tries, 1 abandoned, 1 posted", st)
		}
	})
}

func TestTrackingWithoutReports(t *testing.T) {
	h := newHooks(t)
	e := newEnv(t, sandbox.Options{TrackingURL: h.url(trackPath + "?token=account")})
	// No notifyUrl anywhere: the events need no report to follow.
	_, err := e.client.Send(t.Context(), infobip.SendRequest{From: "news@example.com", Subject: "s",
		To: recipients("latebounce@example.com"), TrackOpens: boolp(false), TrackClicks: boolp(false)})
	if err != nil {
		t.Fatal(err)
	}
	e.idle(t)
	events := h.on(trackPath)
	if len(events) != 1 || events[0].tracking.NotificationType != sandbox.LateBounce || events[0].query.Get("token") != "account" {
		t.Errorf("events at Options.TrackingURL: %+v, want one LATE_BOUNCE", events)
	}
	if st := e.sb.Stats(); st.ReportsQueued != 0 {
		t.Errorf("reports queued without a notify URL: %+v", st)
	}

	// A send without any tracking URL gets no events at all.
	e2 := newEnv(t, sandbox.Options{})
	e2.send(t, infobip.SendRequest{To: recipients("complain@example.com", "ann@example.com")})
	e2.idle(t)
	if st := e2.sb.Stats(); st.TrackingQueued != 0 {
		t.Errorf("tracking events without a tracking URL: %+v", st)
	}
}

// Many sends at once: every event arrives once, after its report.
func TestTrackingConcurrentSends(t *testing.T) {
	h := newHooks(t)
	// Two bounces in five would block the domain: blocks are off here.
	e := newEnv(t, sandbox.Options{ReportBatchSize: 7, ReportWorkers: 6, BounceBlockPercent: -1})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3 {
				to := make([]string, 15)
				for k := range to {
					prefix := []string{"complain", "latebounce", "unsubscribe", "ann", "hardbounce"}[k%5]
					to[k] = fmt.Sprintf("%s-%d-%d-%d@example.com", prefix, g, i, k)
				}
				_, err := e.client.Send(t.Context(), infobip.SendRequest{From: "a@example.com", Subject: "s", To: recipients(to...),
					NotifyURL: h.url(dlrPath), TrackingURL: h.url(trackPath), TrackClicks: boolp(false)})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	e.idle(t)
	// 180 recipients: 36 each of complain, latebounce, unsubscribe and
	// delivered (an open each).
	if n := len(h.trackingEvents()); n != 144 {
		t.Errorf("%d tracking events, want 144", n)
	}
	checkReportsFirst(t, h)
	if st := e.sb.Stats(); st.TrackingPosted != 144 || st.PendingReports != 0 {
		t.Errorf("stats = %+v", st)
	}
	if got := e.sb.Stats().ReportsPosted; got != 180 {
		t.Errorf("%d reports posted, want 180", got)
	}
}
