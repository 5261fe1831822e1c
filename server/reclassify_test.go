package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store"
)

// rulesReclassifying is the built-in rule set with Infobip's new group 7
// made a hard bounce and EC_HARD_BOUNCE made a soft one: under it, a report
// that was UNCLASSIFIED makes an event, and a hard bounce's event no longer
// applies and is replaced.
func rulesReclassifying(t *testing.T) map[string]any {
	t.Helper()
	set := rulesWithNewGroup(t)
	set["rules"] = append([]any{map[string]any{"groupId": 2, "groupName": "BOUNCED", "errorNames": []any{"EC_HARD_BOUNCE"},
		"event": "newsletter.softbounce"}}, set["rules"].([]any)...)
	return set
}

// startReclassify posts a reclassification and returns its operation.
func (e *testEnv) startReclassify(t *testing.T, req map[string]any) map[string]any {
	t.Helper()
	code, resp := e.doJSON(t, http.MethodPost, "/v1/deliveryReports:reclassify", req)
	op, _ := resp["operation"].(map[string]any)
	if code != 200 || op == nil || !strings.HasPrefix(fmt.Sprint(op["name"]), "operations/") {
		t.Fatalf("POST /v1/deliveryReports:reclassify %v = %d %v, want an operation", req, code, resp)
	}
	return op
}

// waitOperation polls an operation until it is done and returns it.
func (e *testEnv) waitOperation(t *testing.T, name string) map[string]any {
	t.Helper()
	var op map[string]any
	waitFor(t, name+" to finish", 60*time.Second, func() (bool, string) {
		code, resp := e.doJSON(t, http.MethodGet, "/v1/"+name, nil)
		op, _ = resp["operation"].(map[string]any)
		return code == 200 && op["done"] == true, toJSON(resp) + "\nlog:\n" + workerLog(e.logs.String())
	})
	return op
}

// countsOf reads an operation's final counts, as "examined=2 unchanged=0 ...".
func countsOf(t *testing.T, op map[string]any) string {
	t.Helper()
	res, _ := op["reclassifyResult"].(map[string]any)
	if res == nil {
		t.Fatalf("operation %v has no reclassifyResult", toJSON(op))
	}
	c, _ := res["counts"].(map[string]any)
	var parts []string
	for _, k := range []string{"examined", "unchanged", "changed", "eventsAdded", "eventsRetracted", "suppressionsAdded", "suppressionsLifted"} {
		v, _ := c[k].(string)
		if v == "" {
			v = "0"
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}

// activity lists a profile's event names, newest first, as "name" or
// "name(retracted)".
func (e *testEnv) activity(t *testing.T, profile string, includeRetracted bool) string {
	t.Helper()
	_, resp := e.doJSON(t, http.MethodGet, fmt.Sprintf("/v1/profiles/%s/events?includeRetracted=%t", profile, includeRetracted), nil)
	var names []string
	for _, ev := range asList(resp["events"]) {
		ev := ev.(map[string]any)
		n := fmt.Sprint(ev["action"])
		if r, _ := ev["retraction"].(map[string]any); r != nil {
			n += "(retracted by " + fmt.Sprint(r["operation"]) + ")"
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// workerLog is what the server logged of operations, for a failure.
func workerLog(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "reclassif") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func asList(v any) []any { l, _ := v.([]any); return l }

// suppressed lists the addresses suppressed now.
func (e *testEnv) suppressed(t *testing.T) string {
	t.Helper()
	_, resp := e.doJSON(t, http.MethodGet, "/v1/suppressions", nil)
	var out []string
	for _, s := range asList(resp["suppressions"]) {
		out = append(out, fmt.Sprint(s.(map[string]any)["email"]))
	}
	return strings.Join(out, ",")
}

// A reclassification under new rules gives an UNCLASSIFIED report its
// event, retracts a hard bounce the rules now call a soft bounce (which
// replaces it), suppresses and lifts accordingly, and streams both the new
// events and the retraction; its dry run counts the same and writes
// nothing, and a second run changes nothing.
func TestReclassification(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			env := newTestEnv(t, append(eng.opts, withSequencer(),
				withServerOptions(func(o *server.Options) { o.OperationPoll = 20 * time.Millisecond }))...)
			hard := report("m-hard", "hard@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED")
			if code, resp := env.postWebhook(t, body(newGroupReport("m-new"), hard)); code != 200 || resp["accepted"] != 2.0 || resp["unclassified"] != 1.0 {
				t.Fatalf("webhook = %d %v, want 2 accepted, 1 unclassified", code, resp)
			}
			if got := env.suppressed(t); got != "hard@example.com" {
				t.Fatalf("suppressed before = %q", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			watch, err := env.events.WatchEvents(ctx, &ibmailv1.WatchEventsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": rulesReclassifying(t)}); code != 200 {
				t.Fatalf("PUT /v1/rules = %d %v", code, resp)
			}

			const wantCounts = "examined=2 unchanged=0 changed=2 eventsAdded=2 eventsRetracted=1 suppressionsAdded=1 suppressionsLifted=1"
			dry := env.waitOperation(t, env.startReclassify(t, map[string]any{"dryRun": true})["name"].(string))
			if got := countsOf(t, dry); got != wantCounts {
				t.Errorf("dry run counts %s\nwant           %s", got, wantCounts)
			}
			if n := len(asList(dry["reclassifyResult"].(map[string]any)["sample"])); n != 2 {
				t.Errorf("dry run sample has %d changes, want 2", n)
			}
			if got := env.activity(t, "hard@example.com", true); got != "newsletter.hardbounce" {
				t.Errorf("after the dry run, hard@example.com's events = %q, want the hard bounce alone", got)
			}
			if got := env.suppressed(t); got != "hard@example.com" {
				t.Errorf("after the dry run, suppressed = %q, want hard@example.com alone", got)
			}

			op := env.startReclassify(t, map[string]any{"requestId": "reclassify-1"})
			name := op["name"].(string)
			if again := env.startReclassify(t, map[string]any{"requestId": "reclassify-1"}); again["name"] != name {
				t.Errorf("a retry with the same request id started %v, want %s", again["name"], name)
			}
			if code, resp := env.doJSON(t, http.MethodPost, "/v1/deliveryReports:reclassify", map[string]any{"requestId": "reclassify-1", "dryRun": true}); code != 409 || restReason(resp) != "REQUEST_ID_REUSED" {
				t.Errorf("another request with the same id = %d %v, want 409 REQUEST_ID_REUSED", code, resp)
			}
			done := env.waitOperation(t, name)
			if got := countsOf(t, done); got != wantCounts {
				t.Errorf("counts %s\nwant   %s", got, wantCounts)
			}
			if got, want := env.activity(t, "hard@example.com", false), "newsletter.softbounce"; got != want {
				t.Errorf("hard@example.com's activity = %q, want %q", got, want)
			}
			if got, want := env.activity(t, "hard@example.com", true), "newsletter.softbounce,newsletter.hardbounce(retracted by "+name+")"; got != want {
				t.Errorf("hard@example.com's events with retracted = %q, want %q", got, want)
			}
			if got := env.activity(t, "m-new@example.com", false); got != "newsletter.hardbounce" {
				t.Errorf("m-new@example.com's activity = %q, want the new hard bounce", got)
			}
			if got := env.suppressed(t); got != "m-new@example.com" {
				t.Errorf("suppressed = %q, want m-new@example.com alone (hard@example.com's lifted)", got)
			}
			_, seg := env.doJSON(t, http.MethodPost, "/v1/profiles:search", map[string]any{"eventNames": []string{"newsletter.hardbounce"}})
			if got := toJSON(seg["profiles"]); !strings.Contains(got, "m-new@example.com") || strings.Contains(got, "hard@example.com\"") {
				t.Errorf("segment of hard bounces = %s, want m-new@example.com and not the retracted one", got)
			}
			_, list := env.doJSON(t, http.MethodGet, "/v1/deliveryReports?outcome=REPORT_OUTCOME_UNCLASSIFIED", nil)
			if n := len(asList(list["reports"])); n != 0 {
				t.Errorf("%d reports still UNCLASSIFIED, want 0", n)
			}

			// The stream: the hard bounce, then its retraction and the
			// events the reclassification made.
			var got []string
			for len(got) < 4 {
				msg, err := watch.Recv()
				if err != nil {
					t.Fatalf("watch after %v: %v", got, err)
				}
				s := msg.GetEvent().GetEmail() + " " + msg.GetEvent().GetAction()
				if msg.GetRetraction() {
					s = "retract " + s
					if msg.GetEvent().GetRetraction().GetOperation() != name {
						t.Errorf("retraction %v does not name %s", msg, name)
					}
				}
				got = append(got, s)
			}
			if want := "hard@example.com newsletter.hardbounce|retract hard@example.com newsletter.hardbounce|" +
				"m-new@example.com newsletter.hardbounce|hard@example.com newsletter.softbounce"; !sameSet(got[1:], strings.Split(want, "|")[1:]) || got[0] != strings.Split(want, "|")[0] || !before(got, "retract hard@example.com newsletter.hardbounce", "hard@example.com newsletter.softbounce") {
				t.Errorf("watched %q\nwant    %q (the retraction before its replacement)", got, want)
			}

			again := env.waitOperation(t, env.startReclassify(t, map[string]any{})["name"].(string))
			if got, want := countsOf(t, again), "examined=2 unchanged=2 changed=0 eventsAdded=0 eventsRetracted=0 suppressionsAdded=0 suppressionsLifted=0"; got != want {
				t.Errorf("second run counts %s\nwant              %s", got, want)
			}
			_, ops := env.doJSON(t, http.MethodGet, "/v1/operations?pageSize=2", nil)
			if n := len(asList(ops["operations"])); n != 2 || ops["nextPageToken"] == "" {
				t.Errorf("first page of operations has %d, token %v; want 2 and a next page", n, ops["nextPageToken"])
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func before(list []string, first, then string) bool {
	i, j := -1, -1
	for k, s := range list {
		if s == first && i < 0 {
			i = k
		}
		if s == then && j < 0 {
			j = k
		}
	}
	return i >= 0 && j > i
}

// A reclassification only of UNCLASSIFIED reports, of a window, leaves the
// rest alone; a cancelled one stops; refusals name the field.
func TestReclassificationFiltersAndRefusals(t *testing.T) {
	env := newTestEnv(t, withServerOptions(func(o *server.Options) { o.OperationPoll = 20 * time.Millisecond }))
	hard := report("m-hard", "hard@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED")
	if code, resp := env.postWebhook(t, body(newGroupReport("m-new"), hard)); code != 200 {
		t.Fatalf("webhook = %d %v", code, resp)
	}
	if code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": rulesReclassifying(t)}); code != 200 {
		t.Fatalf("PUT /v1/rules = %d %v", code, resp)
	}
	only := env.waitOperation(t, env.startReclassify(t, map[string]any{"outcomes": []string{"REPORT_OUTCOME_UNCLASSIFIED"}, "dryRun": true})["name"].(string))
	if got, want := countsOf(t, only), "examined=1 unchanged=0 changed=1 eventsAdded=1 eventsRetracted=0 suppressionsAdded=1 suppressionsLifted=0"; got != want {
		t.Errorf("UNCLASSIFIED only: %s\nwant %s", got, want)
	}
	past := env.waitOperation(t, env.startReclassify(t, map[string]any{"window": map[string]any{"endTime": "2001-01-01T00:00:00Z"}})["name"].(string))
	if got := countsOf(t, past); !strings.HasPrefix(got, "examined=0 ") {
		t.Errorf("a window before every report: %s, want nothing examined", got)
	}
	for _, tc := range []struct {
		req   map[string]any
		field string
	}{
		{map[string]any{"outcomes": []string{"REPORT_OUTCOME_UNSPECIFIED"}}, "outcomes[0]"},
		{map[string]any{"requestId": strings.Repeat("x", 65)}, "request_id"},
		{map[string]any{"requestId": "bad id"}, "request_id"},
		{map[string]any{"window": map[string]any{"startTime": "2026-01-02T00:00:00Z", "endTime": "2026-01-01T00:00:00Z"}}, "window.end_time"},
	} {
		code, resp := env.doJSON(t, http.MethodPost, "/v1/deliveryReports:reclassify", tc.req)
		if code != 400 || !strings.Contains(fmt.Sprint(resp["message"]), tc.field) {
			t.Errorf("%v = %d %v, want 400 naming %s", tc.req, code, resp, tc.field)
		}
	}
	for _, name := range []string{"operations/x", "operations/0", "operations/01", "operations/99999"} {
		code, _ := env.doJSON(t, http.MethodGet, "/v1/"+name, nil)
		if want := map[bool]int{true: 404, false: 400}[name == "operations/99999"]; code != want {
			t.Errorf("GET %s = %d, want %d", name, code, want)
		}
	}
}

// postUnclassified posts n reports of an error group the built-in rules do
// not know, then stores the rules that make them hard bounces.
func postUnclassified(t *testing.T, env *testEnv, n int) {
	t.Helper()
	var rs []string
	for i := range n {
		rs = append(rs, newGroupReport(fmt.Sprintf("m%03d", i)))
	}
	if code, resp := env.postWebhook(t, body(rs...)); code != 200 || resp["unclassified"] != float64(n) {
		t.Fatalf("webhook = %d %v, want %d unclassified", code, resp, n)
	}
	if code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": rulesWithNewGroup(t)}); code != 200 {
		t.Fatalf("PUT /v1/rules = %d %v", code, resp)
	}
}

// checkReclassifiedOnce checks that op turned the n reports of
// postUnclassified into hard bounces, each exactly once.
func checkReclassifiedOnce(t *testing.T, env *testEnv, op map[string]any, n int) {
	t.Helper()
	if got, want := countsOf(t, op), fmt.Sprintf("examined=%d unchanged=0 changed=%d eventsAdded=%d eventsRetracted=0 suppressionsAdded=%d suppressionsLifted=0", n, n, n, n); got != want {
		t.Errorf("counts %s\nwant   %s", got, want)
	}
	matches, err := env.store.SearchProfiles(context.Background(), store.ProfileQuery{Names: []string{"newsletter.hardbounce"}, Limit: 10 * n})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range matches {
		if m.EventCount != 1 {
			t.Errorf("profile %s has %d hard bounces, want 1", m.ProfileID, m.EventCount)
		}
	}
	if len(matches) != n {
		t.Errorf("%d profiles with a hard bounce, want %d", len(matches), n)
	}
}

// A replica that dies in the middle of a job leaves it to the others: the
// job is finished once, by one of two replicas racing for it, with each
// report reclassified once.
func TestReclassificationSurvivesAReplicaDying(t *testing.T) {
	const reports = 450 // three steps
	lease := withServerOptions(func(o *server.Options) {
		o.OperationPoll, o.OperationLease = 20*time.Millisecond, 300*time.Millisecond
	})
	var steps atomic.Int32
	dying := withServerOptions(func(o *server.Options) {
		o.OperationStepDone = func(int64, int) error {
			steps.Add(1)
			return errors.New("killed")
		}
	})
	a := newTestEnv(t, withPostgres(), lease, dying)
	postUnclassified(t, a, reports)
	name := a.startReclassify(t, map[string]any{})["name"].(string)
	waitFor(t, "replica a to do one step and die", 30*time.Second, func() (bool, string) {
		return steps.Load() == 1, fmt.Sprint(steps.Load())
	})
	b := newTestEnv(t, withReplicaOf(a), lease)
	c := newTestEnv(t, withReplicaOf(a), lease)
	checkReclassifiedOnce(t, b, c.waitOperation(t, name), reports)
}

// On SQLite, a restart of the only server in the middle of a job finishes
// it once.
func TestReclassificationResumesAfterRestart(t *testing.T) {
	const reports = 450
	fast := withServerOptions(func(o *server.Options) {
		o.OperationPoll, o.OperationLease = 20*time.Millisecond, 300*time.Millisecond
	})
	var steps atomic.Int32
	a := newTestEnv(t, fast, withServerOptions(func(o *server.Options) {
		o.OperationStepDone = func(int64, int) error {
			if steps.Add(1) == 2 {
				return errors.New("killed")
			}
			return nil
		}
	}))
	postUnclassified(t, a, reports)
	name := a.startReclassify(t, map[string]any{})["name"].(string)
	waitFor(t, "the server to do two steps and die", 30*time.Second, func() (bool, string) {
		return steps.Load() == 2, fmt.Sprint(steps.Load())
	})
	_, mid := a.doJSON(t, http.MethodGet, "/v1/"+name, nil)
	if mid["operation"].(map[string]any)["done"] == true {
		t.Fatalf("the operation finished before the restart: %v", mid)
	}
	a.shutdown()
	b := newTestEnv(t, fast, withSQLitePath(a.sqlitePath))
	checkReclassifiedOnce(t, b, b.waitOperation(t, name), reports)
}

// A report that came with a connection's webhook secret, about an address
// none of that connection's sends went to, gets its new event when
// reclassified but suppresses nothing, as it would not have at ingest.
func TestReclassificationUnderAConnectionsSecret(t *testing.T) {
	env := newTestEnv(t, withServerOptions(func(o *server.Options) { o.OperationPoll = 20 * time.Millisecond }))
	conn, err := env.conns.CreateConnection(context.Background(), &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{
		Id: "eu", ApiKey: testAPIKey, BaseUrl: "https://eu1.api.infobip.com",
	}})
	if err != nil {
		t.Fatal(err)
	}
	byConnection := "/v1/webhooks/infobip/delivery-reports?token=" + conn.GetWebhookSecret()
	if code, resp := env.do(t, http.MethodPost, byConnection, "application/json", []byte(body(newGroupReport("c-new")))); code != 200 || resp["unclassified"] != 1.0 {
		t.Fatalf("webhook with the connection's secret = %d %v", code, resp)
	}
	if code, resp := env.postWebhook(t, body(newGroupReport("s-new"))); code != 200 || resp["unclassified"] != 1.0 {
		t.Fatalf("webhook with the server's secret = %d %v", code, resp)
	}
	if code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": rulesWithNewGroup(t)}); code != 200 {
		t.Fatalf("PUT /v1/rules = %d %v", code, resp)
	}
	op := env.waitOperation(t, env.startReclassify(t, map[string]any{})["name"].(string))
	if got, want := countsOf(t, op), "examined=2 unchanged=0 changed=2 eventsAdded=2 eventsRetracted=0 suppressionsAdded=1 suppressionsLifted=0"; got != want {
		t.Errorf("counts %s\nwant   %s", got, want)
	}
	if got := env.suppressed(t); got != "s-new@example.com" {
		t.Errorf("suppressed = %q, want s-new@example.com alone", got)
	}
	if got := env.activity(t, "c-new@example.com", false); got != "newsletter.hardbounce" {
		t.Errorf("c-new@example.com's activity = %q, want its new hard bounce", got)
	}
}

// A job goes on with the rules it started with when a version is stored
// in the middle of it, also when it started with the built-in rules,
// which no store holds.
func TestReclassificationKeepsItsRulesVersion(t *testing.T) {
	var env *testEnv
	var once sync.Once
	env = newTestEnv(t, withServerOptions(func(o *server.Options) {
		o.OperationPoll = 20 * time.Millisecond
		o.OperationStepDone = func(int64, int) error {
			once.Do(func() {
				if code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": rulesWithNewGroup(t)}); code != 200 {
					t.Errorf("PUT /v1/rules in the middle of the job = %d %v", code, resp)
				}
			})
			return nil
		}
	}))
	var rs []string
	for i := range 450 {
		rs = append(rs, newGroupReport(fmt.Sprintf("v%03d", i)))
	}
	if code, resp := env.postWebhook(t, body(rs...)); code != 200 {
		t.Fatalf("webhook = %d %v", code, resp)
	}
	op := env.waitOperation(t, env.startReclassify(t, map[string]any{})["name"].(string))
	if got, want := countsOf(t, op), "examined=450 unchanged=450 changed=0 eventsAdded=0 eventsRetracted=0 suppressionsAdded=0 suppressionsLifted=0"; got != want {
		t.Errorf("counts %s\nwant   %s (the built-in rules throughout)", got, want)
	}
	if v := op["reclassifyMetadata"].(map[string]any)["rulesVersion"]; v != "0" && v != nil {
		t.Errorf("rules version %v, want 0", v)
	}
}
