package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/infobip"
	"github.com/ibmail/ibmail/sandbox"
)

// clock is a settable Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// mix returns n addresses, the first bounces of them hard bounces, the
// rest delivered, each unique to tag.
func mix(tag string, n, bounces int) []infobip.Recipient {
	out := make([]string, n)
	for i := range out {
		if i < bounces {
			out[i] = fmt.Sprintf("hardbounce-%s-%d@example.com", tag, i)
		} else {
			out[i] = fmt.Sprintf("user-%s-%d@example.com", tag, i)
		}
	}
	return recipients(out...)
}

// bounceEnv is a sandbox posting its platform events to h, on a clock the
// test moves.
func bounceEnv(t *testing.T, opts sandbox.Options) (*env, *hooks, *clock) {
	t.Helper()
	h, c := newHooks(t), newClock()
	opts.PlatformEventsURL = h.url(platformPath + "?token=pl4tform")
	opts.Now = c.Now
	return newEnv(t, opts), h, c
}

func (e *env) sendFrom(t *testing.T, h *hooks, from string, to []infobip.Recipient) {
	t.Helper()
	e.send(t, infobip.SendRequest{From: from, To: to, NotifyURL: h.url(dlrPath)})
	e.idle(t)
}

// platformKinds lists the platform events received as type:domain:rate.
func platformKinds(h *hooks) []string {
	var out []string
	for _, ev := range h.platformEvents() {
		d := ev.EventDetails
		out = append(out, fmt.Sprintf("%s:%s:%v", d.Type, d.Domain, d.BounceRate))
	}
	return out
}

func TestBounceRateWarnsThenBlocks(t *testing.T) {
	for _, generic := range []bool{false, true} {
		t.Run(fmt.Sprintf("generic=%v", generic), func(t *testing.T) {
			e, h, c := bounceEnv(t, sandbox.Options{GenericGroupNames: generic})
			const from = "Shop <news@Example.com>"
			steps := []struct {
				name    string
				to      []infobip.Recipient
				want    []string // platform events so far
				blocked bool
			}{
				{"4 % of 100: a warning", mix("a", 100, 4), []string{"HIGH_BOUNCE_RATE_WARNING:example.com:4"}, false},
				{"still above 3 %: no second warning", mix("b", 10, 0), []string{"HIGH_BOUNCE_RATE_WARNING:example.com:4"}, false},
				{"7 of 113: the block", mix("c", 3, 3), []string{"HIGH_BOUNCE_RATE_WARNING:example.com:4", "HIGH_BOUNCE_RATE_BLOCKED:example.com:6.19"}, true},
			}
			for _, st := range steps {
				e.sendFrom(t, h, from, st.to)
				if got := platformKinds(h); strings.Join(got, " ") != strings.Join(st.want, " ") {
					t.Fatalf("%s: platform events %v, want %v", st.name, got, st.want)
				}
				if got := domainBlocked(t, e, "example.com"); got != st.blocked {
					t.Errorf("%s: GET /email/1/domains says blocked %v, want %v", st.name, got, st.blocked)
				}
			}
			evs := h.platformEvents()
			warn, block := evs[0], evs[1]
			if warn.EventDetails.WarnThreshold != 3 || warn.EventDetails.BlockThreshold != 0 ||
				block.EventDetails.BlockThreshold != 5 || block.EventDetails.WarnThreshold != 0 {
				t.Errorf("thresholds: warning %+v, block %+v; want 3 and 5", warn.EventDetails, block.EventDetails)
			}
			for _, ev := range evs {
				if ev.EventDetails.Scope != "HOURLY" || ev.EventDetails.AccountKey != sandbox.AccountKey ||
					ev.CreatedAt != c.Now().UnixMilli() || !uuidPattern.MatchString(ev.EventID) {
					t.Errorf("platform event %+v", ev)
				}
			}
			if warn.EventID == block.EventID {
				t.Error("the warning and the block share an eventId")
			}
			for _, p := range h.on(platformPath) {
				if p.query.Get("token") != "pl4tform" {
					t.Errorf("platform-events token lost: %v", p.query)
				}
			}

			// The domain's next send is accepted, and every recipient fails.
			e.sendFrom(t, h, "news@example.com", recipients("ann-after@example.com", "hardbounce-after@example.com", "complain-after@example.com"))
			want := sandbox.BlockedOutcome(generic)
			wantGroup := map[bool]string{false: "DROPPED", true: "HANDSET_ERRORS"}[generic]
			for _, addr := range []string{"ann-after@example.com", "hardbounce-after@example.com", "complain-after@example.com"} {
				r, ok := h.reportFor(addr)
				if !ok || r.Error.ID != 6016 || r.Error.Name != "EC_SENDER_DOMAIN_BOUNCE_BLOCKED" || r.Error.GroupID != 1 ||
					r.Error.GroupName != wantGroup || !r.Error.Permanent || r.Status.GroupName != "UNDELIVERABLE" ||
					r.Status.Name != "UNDELIVERABLE_REJECTED_OPERATOR" || r.Error != want.Error || r.SMTP != nil {
					t.Errorf("%s while blocked: %+v, want 6016 in group %s", addr, r, wantGroup)
				}
			}
			// Another domain sends as usual.
			e.sendFrom(t, h, "news@other.example", recipients("ann-other@example.com"))
			if r, _ := h.reportFor("ann-other@example.com"); r.Status.GroupName != "DELIVERED" {
				t.Errorf("another domain's send: %+v, want delivered", r)
			}
			if got := len(h.platformEvents()); got != 2 {
				t.Errorf("%d platform events after the block, want still 2", got)
			}
			st := e.sb.Stats()
			if st.DomainWarnings != 1 || st.DomainBlocks != 1 || st.BlockedRecipients != 3 || st.PlatformEventsQueued != 2 || st.PlatformEventsPosted != 2 {
				t.Errorf("stats = %+v", st)
			}

			// Unblocking (here over the admin route) restores delivery.
			resp, body := do(t, mustRequest(t, http.MethodPost, e.srv.URL+"/sandbox/domains/EXAMPLE.com/unblock"))
			if resp.StatusCode != 200 || string(body) != `{"domain":"example.com","unblocked":true}` {
				t.Errorf("unblock: %d %s", resp.StatusCode, body)
			}
			if domainBlocked(t, e, "example.com") {
				t.Error("still listed blocked after the unblock")
			}
			e.sendFrom(t, h, from, recipients("ann-unblocked@example.com"))
			if r, _ := h.reportFor("ann-unblocked@example.com"); r.Status.GroupName != "DELIVERED" {
				t.Errorf("after the unblock: %+v, want delivered", r)
			}
			if e.sb.UnblockDomain("example.com") {
				t.Error("UnblockDomain of an unblocked domain reported a block")
			}
		})
	}
}

// domainBlocked says what GET /email/1/domains says of name.
func domainBlocked(t *testing.T, e *env, name string) bool {
	t.Helper()
	all, err := e.client.Domains(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all.Results {
		if strings.EqualFold(d.DomainName, name) {
			return d.Blocked
		}
	}
	t.Fatalf("domain %s not listed: %+v", name, all.Results)
	return false
}

func TestBounceRateWindowAndMinimum(t *testing.T) {
	e, h, c := bounceEnv(t, sandbox.Options{BlockDuration: 2 * time.Hour})
	// Nineteen bounces are too few recipients to judge.
	e.sendFrom(t, h, "news@example.com", mix("a", 19, 19))
	if got := platformKinds(h); len(got) != 0 {
		t.Fatalf("below the minimum sample: %v", got)
	}
	// A new hour forgets them: 2 in 100 is under every threshold.
	c.advance(time.Hour)
	e.sendFrom(t, h, "news@example.com", mix("b", 100, 2))
	if got := platformKinds(h); len(got) != 0 {
		t.Fatalf("2 %% after a new hour: %v", got)
	}
	// And the next hour judges 1 in 20 on its own: 5 %, a warning and the
	// block together, the warning first.
	c.advance(time.Hour)
	e.sendFrom(t, h, "news@example.com", mix("c", 20, 1))
	want := "HIGH_BOUNCE_RATE_WARNING:example.com:5 HIGH_BOUNCE_RATE_BLOCKED:example.com:5"
	if got := strings.Join(platformKinds(h), " "); got != want {
		t.Fatalf("1 in 20: %s, want %s", got, want)
	}
	states := e.sb.DomainStates()
	if len(states) != 1 || !states[0].Blocked || !states[0].BlockedUntil.Equal(c.Now().Add(2*time.Hour)) {
		t.Errorf("DomainStates = %+v, want example.com blocked for 2h", states)
	}
	// The block lasts BlockDuration, then lifts by itself.
	c.advance(2*time.Hour - time.Millisecond)
	e.sendFrom(t, h, "news@example.com", recipients("ann-late@example.com"))
	if r, _ := h.reportFor("ann-late@example.com"); r.Error.ID != 6016 {
		t.Errorf("just before the block ends: %+v, want 6016", r)
	}
	c.advance(time.Millisecond)
	e.sendFrom(t, h, "news@example.com", recipients("ann-free@example.com"))
	if r, _ := h.reportFor("ann-free@example.com"); r.Status.GroupName != "DELIVERED" {
		t.Errorf("once the block ends: %+v, want delivered", r)
	}
	// The blocked send counted nothing: the domain starts clean.
	if st := e.sb.DomainStates()[0]; st.Blocked || st.Recipients != 1 || st.Bounces != 0 {
		t.Errorf("after the block: %+v", st)
	}
}

func TestBounceRateThresholds(t *testing.T) {
	tests := []struct {
		name string
		opts sandbox.Options
		to   []infobip.Recipient
		want string
	}{
		{"soft bounces, suppressions, complaints do not count", sandbox.Options{},
			recipients(strings.Split("softbounce-1 softbounce-2 inboxfull-1 suppressed-1 dropped-1 complain-1 unsubscribe-1 a b c d e f g h i j k l m", " ")...), ""},
		{"spam, unknown users, late bounces count", sandbox.Options{},
			recipients(strings.Split("spam-1 userunknown-1 latebounce-1 a b c d e f g h i j k l m n o p q r s t u v w x y z zz", " ")...),
			"HIGH_BOUNCE_RATE_WARNING:example.com:10 HIGH_BOUNCE_RATE_BLOCKED:example.com:10"},
		{"own thresholds", sandbox.Options{BounceWarnPercent: 10, BounceBlockPercent: 50, BounceMinRecipients: 5}, mix("x", 5, 1),
			"HIGH_BOUNCE_RATE_WARNING:example.com:20"},
		{"warnings off", sandbox.Options{BounceWarnPercent: -1}, mix("x", 20, 2), "HIGH_BOUNCE_RATE_BLOCKED:example.com:10"},
		{"blocks off", sandbox.Options{BounceBlockPercent: -1}, mix("x", 20, 20), "HIGH_BOUNCE_RATE_WARNING:example.com:100"},
		{"random bounces count", sandbox.Options{Seed: 5, Faults: sandbox.Faults{BounceRate: 1}}, mix("x", 20, 0),
			"HIGH_BOUNCE_RATE_WARNING:example.com:100 HIGH_BOUNCE_RATE_BLOCKED:example.com:100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, h, _ := bounceEnv(t, tt.opts)
			for i := range tt.to {
				if !strings.Contains(tt.to[i].Email, "@") {
					tt.to[i].Email += "@example.com"
				}
			}
			e.sendFrom(t, h, "news@example.com", tt.to)
			if got := strings.Join(platformKinds(h), " "); got != tt.want {
				t.Errorf("platform events %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPlatformEventDuplicatesAndRetries(t *testing.T) {
	e, h, _ := bounceEnv(t, sandbox.Options{Seed: 3, Faults: sandbox.Faults{DuplicateRate: 1}})
	h.answerFirst(platformPath, 500)
	e.sendFrom(t, h, "news@example.com", mix("a", 20, 20))
	evs := h.platformEvents()
	var got []string
	for _, ev := range evs {
		got = append(got, ev.EventDetails.Type+" "+ev.EventID)
	}
	if len(evs) != 4 || evs[0].EventID != evs[1].EventID || evs[2].EventID != evs[3].EventID || evs[1].EventID == evs[2].EventID ||
		evs[0].EventDetails.Type != sandbox.HighBounceRateWarning || evs[2].EventDetails.Type != sandbox.HighBounceRateBlocked {
		t.Errorf("platform events %v, want the warning twice then the block twice", got)
	}
	if st := e.sb.Stats(); st.PlatformEventsQueued != 2 || st.PlatformEventDuplicates != 2 || st.PlatformEventsPosted != 4 || st.PlatformEventPostFailures != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// A domain listed as blocked is blocked from the start, until unblocked,
// and Reset blocks it again; without a platform-events URL, nothing is
// posted but blocks still happen.
func TestListedBlockedDomain(t *testing.T) {
	h := newHooks(t)
	e := newEnv(t, sandbox.Options{Domains: []sandbox.Domain{{Name: "example.com", Active: true, Blocked: true}, {Name: "b.example", Active: true}}})
	e.sendFrom(t, h, "news@example.com", recipients("ann@example.com"))
	if r, _ := h.reportFor("ann@example.com"); r.Error.ID != 6016 {
		t.Errorf("listed blocked: %+v, want 6016", r)
	}
	states := e.sb.DomainStates()
	if len(states) != 1 || !states[0].Blocked || !states[0].BlockedUntil.IsZero() {
		t.Errorf("DomainStates = %+v, want example.com blocked with no end", states)
	}
	if !e.sb.UnblockDomain("example.com") || domainBlocked(t, e, "example.com") {
		t.Error("UnblockDomain did not lift the listed block")
	}
	e.sendFrom(t, h, "news@example.com", recipients("bob@example.com"))
	if r, _ := h.reportFor("bob@example.com"); r.Status.GroupName != "DELIVERED" {
		t.Errorf("after the unblock: %+v", r)
	}
	e.sb.Reset()
	if !domainBlocked(t, e, "example.com") {
		t.Error("Reset did not restore the listed block")
	}
	// b.example gets blocked by its rate, with nowhere to post the events.
	e.sendFrom(t, h, "news@b.example", mix("b", 20, 20))
	if st := e.sb.Stats(); st.DomainBlocks != 1 || st.PlatformEventsQueued != 0 || !domainBlocked(t, e, "b.example") {
		t.Errorf("stats = %+v, want a block and nothing queued", st)
	}
}

func TestDomainAdminRoutes(t *testing.T) {
	e, h, _ := bounceEnv(t, sandbox.Options{})
	e.sendFrom(t, h, "news@example.com", mix("a", 40, 1))
	resp, body := do(t, mustRequest(t, http.MethodGet, e.srv.URL+"/sandbox/domains"))
	var states []map[string]any
	if err := json.Unmarshal(body, &states); err != nil || resp.StatusCode != 200 || len(states) != 1 {
		t.Fatalf("GET /sandbox/domains: %d %s", resp.StatusCode, body)
	}
	if s := states[0]; s["domain"] != "example.com" || s["recipients"] != 40.0 || s["bounces"] != 1.0 || s["bounceRate"] != 2.5 || s["blocked"] != false {
		t.Errorf("1 bounce in 40: %s", body)
	}
	for _, bad := range []string{"bad%20domain", "a%2Fb", strings.Repeat("a", 254)} {
		resp, body := do(t, mustRequest(t, http.MethodPost, e.srv.URL+"/sandbox/domains/"+bad+"/unblock"))
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"domain":[`) {
			t.Errorf("unblock %q: %d %s, want 400 naming domain", bad, resp.StatusCode, body)
		}
	}
	resp, body = do(t, mustRequest(t, http.MethodPost, e.srv.URL+"/sandbox/domains/unknown.example/unblock"))
	if resp.StatusCode != 200 || string(body) != `{"domain":"unknown.example","unblocked":false}` {
		t.Errorf("unblock of a domain never blocked: %d %s", resp.StatusCode, body)
	}
}
