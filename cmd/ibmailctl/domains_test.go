package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// ctlCase is one ibmailctl run and what it should do: the exit code, and
// substrings stdout must and must not hold and stderr must hold.
type ctlCase struct {
	name     string
	args     []string
	wantCode int
	wantOut  []string
	wantErr  []string
	notOut   []string
	notErr   []string
	// inOrder: wantOut must appear in stdout in its order, as for a list
	// newest first.
	inOrder bool
}

// runCases runs the cases in order against srv.
func runCases(t *testing.T, srv *testServer, cases []ctlCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got := ctl(t, srv.addr, "", tt.args...)
			checkResult(t, got, tt.wantCode, tt.wantOut, tt.wantErr)
			if tt.inOrder {
				rest := got.stdout
				for _, w := range tt.wantOut {
					i := strings.Index(rest, w)
					if i < 0 {
						t.Errorf("stdout lacks %q after the previous ones, in order:\n%s", w, got.stdout)
						break
					}
					rest = rest[i+len(w):]
				}
			}
			for _, n := range tt.notOut {
				if strings.Contains(got.stdout, n) {
					t.Errorf("stdout holds %q:\n%s", n, got.stdout)
				}
			}
			for _, n := range tt.notErr {
				if strings.Contains(got.stderr, n) {
					t.Errorf("stderr holds %q:\n%s", n, got.stderr)
				}
			}
		})
	}
}

// platformEvent is a platform event as Infobip posts it, created now so
// that its 24 hours have not passed.
func platformEvent(id, typ, domain string, threshold, rate float64, scope string) *ibmailv1.PlatformEvent {
	d := &ibmailv1.PlatformEventDetails{Type: typ, AccountKey: "8F0792F86035A9F4290821F1EE6BC06A", Domain: domain, BounceRate: rate, Scope: scope}
	if typ == "HIGH_BOUNCE_RATE_WARNING" {
		d.WarnThreshold = threshold
	} else {
		d.BlockThreshold = threshold
	}
	return &ibmailv1.PlatformEvent{EventId: id, CreatedAt: time.Now().UnixMilli(), EventDetails: d}
}

// TestDomains follows a sending domain through a block and an unblock, as
// an operator sees it: the listing, one domain, a held send, the unblock.
func TestDomains(t *testing.T) {
	srv := startServer(t)
	srv.provisionSender(t)
	html := writeFile(t, "hello.html", "<p>Hi</p>")
	people := writeFile(t, "people.csv", "email,profileId\nann@example.com,ann\n")
	// No dispatcher runs here, so the send stays pending: it is what a
	// block holds.
	got := ctl(t, srv.addr, "", "send", "--sender", "s1", "--subject", "Hello", "--html", html, "--recipients", people)
	checkResult(t, got, exitOK, nil, nil)
	sendID := strings.TrimSpace(got.stdout)

	t.Run("active", func(t *testing.T) {
		runCases(t, srv, []ctlCase{
			{name: "list", args: []string{"domains"}, wantCode: exitOK,
				wantOut: []string{"DOMAIN       STATE   HOURLY  DAILY  REPORTED  UNTIL  SENDERS\n", "example.com  ACTIVE  0%/0    0%/0   -         -      s1\n"}},
			{name: "one", args: []string{"domains", "example.com"}, wantCode: exitOK,
				wantOut: []string{"domain   example.com\n", "state    ACTIVE\n", "hourly   0% of 0 reports\n", "senders  s1\n"}, notOut: []string{"reason", "until", "TYPE"}},
			{name: "send not held", args: []string{"send-status", sendID}, wantCode: exitOK, wantOut: []string{"pending"}, notOut: []string{"held"}},
			{name: "unknown domain", args: []string{"domains", "nowhere.example"}, wantCode: exitServer, wantErr: []string{"NotFound", "nowhere.example"}},
			{name: "not a domain", args: []string{"domains", "ann@example.com"}, wantCode: exitUsage, wantErr: []string{"not a domain name"}},
			{name: "two domains", args: []string{"domains", "example.com", "other.example"}, wantCode: exitUsage, wantErr: []string{"at most one DOMAIN"}},
			{name: "unblock without a domain", args: []string{"unblock"}, wantCode: exitUsage, wantErr: []string{"one DOMAIN"}},
			{name: "unblock an unknown domain", args: []string{"unblock", "nowhere.example"}, wantCode: exitServer, wantErr: []string{"NotFound"}},
		})
	})

	srv.postPlatformEvent(t, platformEvent("dc592d92-54bb-4c97-b9fb-7aafb8f07bfd", "HIGH_BOUNCE_RATE_BLOCKED", "example.com", 5, 6.6, "DAILY"))
	// A platform event makes its domain known even with no sender of it.
	srv.postPlatformEvent(t, platformEvent("550e8400-e29b-41d4-a716-446655440000", "HIGH_BOUNCE_RATE_WARNING", "other.example", 3, 4.6, "HOURLY"))
	until := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`)

	t.Run("blocked", func(t *testing.T) {
		runCases(t, srv, []ctlCase{
			{name: "list", args: []string{"domains"}, wantCode: exitOK,
				wantOut: []string{"example.com    BLOCKED  0%/0    0%/0   6.6%/5%/DAILY", "other.example  WARNED   0%/0    0%/0   4.6%/3%/HOURLY"}},
			{name: "one with its events", args: []string{"domains", "example.com"}, wantCode: exitOK,
				wantOut: []string{"state     BLOCKED\n", "reason    Infobip blocked the domain", "until     ", "reported  6.6% over the daily window, threshold 5%\n",
					"TIME", "HIGH_BOUNCE_RATE_BLOCKED  6.6%         5%         DAILY  dc592d92-54bb-4c97-b9fb-7aafb8f07bfd\n"}},
			{name: "warned domain without senders", args: []string{"domains", "other.example"}, wantCode: exitOK,
				wantOut: []string{"state     WARNED\n", "senders   -\n", "HIGH_BOUNCE_RATE_WARNING"}},
			{name: "json", args: []string{"domains", "--output", "json"}, wantCode: exitOK,
				wantOut: []string{`"sendingDomains"`, `"state": "SENDING_DOMAIN_STATE_BLOCKED"`, `"reportedBounceRate": 6.6`, `"senderIds": [`}},
			{name: "send held", args: []string{"send-status", sendID}, wantCode: exitOK,
				wantOut: []string{"held        held: sending domain example.com is blocked until", "example.com:unblock"}},
			{name: "recipient says why", args: []string{"send-status", sendID, "--recipients"}, wantCode: exitOK,
				wantOut: []string{"PENDING", "sending domain example.com is blocked"}},
		})
		got := ctl(t, srv.addr, "", "domains")
		line := ""
		for _, l := range strings.Split(got.stdout, "\n") {
			if strings.HasPrefix(l, "example.com ") {
				line = l
			}
		}
		if !until.MatchString(line) {
			t.Errorf("blocked domain's line %q shows no until", line)
		}
	})

	t.Run("unblock", func(t *testing.T) {
		runCases(t, srv, []ctlCase{
			{name: "unblock", args: []string{"unblock", "example.com"}, wantCode: exitOK,
				wantOut: []string{"domain    example.com\n", "state     ACTIVE\n", "reason    unblocked by an operator\n", "UNBLOCKED                 -            -          -      -\n", "HIGH_BOUNCE_RATE_BLOCKED"}, notOut: []string{"until"}},
			{name: "list", args: []string{"domains"}, wantCode: exitOK,
				wantOut: []string{"example.com    ACTIVE", "other.example  WARNED"}, notOut: []string{"BLOCKED"}},
			{name: "send no longer held", args: []string{"send-status", sendID}, wantCode: exitOK, notOut: []string{"held"}},
			{name: "unblock json", args: []string{"unblock", "other.example", "--output", "json"}, wantCode: exitOK,
				wantOut: []string{`"domain": "other.example"`, `"state": "SENDING_DOMAIN_STATE_ACTIVE"`}},
		})
	})

	// The JSON of one domain is the API's SendingDomainStatus.
	got = ctl(t, srv.addr, "", "domains", "example.com", "--output", "json")
	var d struct {
		Domain     string   `json:"domain"`
		State      string   `json:"state"`
		SenderIDs  []string `json:"senderIds"`
		LastEvents []struct {
			Type string `json:"type"`
		} `json:"lastEvents"`
	}
	if err := json.Unmarshal([]byte(got.stdout), &d); err != nil {
		t.Fatalf("domains --output json: %v\n%s", err, got.stdout)
	}
	if d.Domain != "example.com" || d.State != "SENDING_DOMAIN_STATE_ACTIVE" || len(d.SenderIDs) != 1 || len(d.LastEvents) != 2 || d.LastEvents[0].Type != "UNBLOCKED" {
		t.Errorf("domains example.com --output json = %s", got.stdout)
	}
}
