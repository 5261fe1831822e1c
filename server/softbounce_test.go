package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
)

// softBounced is the address every soft-bounce case bounces.
const softBounced = "sb@example.com"

// softBounceReport is a delivery report of messageID that the built-in
// rules make a newsletter.softbounce (a full inbox).
func softBounceReport(messageID string) string {
	return report(messageID, softBounced, 6011, "EC_SOFT_BOUNCE", 2, "BOUNCED")
}

// deliveredReport is a delivery report of messageID with Infobip's status
// DELIVERED and no error.
func deliveredReport(messageID string) string {
	var r map[string]any
	_ = json.Unmarshal([]byte(report(messageID, softBounced, 0, "NO_ERROR", 0, "OK")), &r)
	r["status"] = map[string]any{"id": 5, "groupId": 3, "groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"}
	r["error"].(map[string]any)["permanent"] = false
	b, _ := json.Marshal(r)
	return string(b)
}

// putSoftBouncePolicy puts the built-in rules in force with the policy
// and the soft-bounce limit's lifetime changed (lifetime "": the default),
// and a tracking rule making a late bounce a soft bounce.
func putSoftBouncePolicy(t *testing.T, env *testEnv, limit int, window, lifetime string) {
	t.Helper()
	var set map[string]any
	if err := json.Unmarshal([]byte(defaultRuleSetJSON), &set); err != nil {
		t.Fatal(err)
	}
	set["softBouncePolicy"] = map[string]any{"limit": limit, "window": window}
	if lifetime != "" {
		set["suppressionLifetimes"] = []any{map[string]any{"cause": "soft-bounce limit", "lifetime": lifetime}}
	}
	tracking := set["trackingRules"].([]any)
	for _, r := range tracking {
		if r := r.(map[string]any); r["notificationType"] == "LATE_BOUNCE" {
			r["event"], r["suppress"] = "newsletter.softbounce", ""
		}
	}
	if code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": set}); code != 200 {
		t.Fatalf("PUT /v1/rules = %d %v", code, resp)
	}
}

// reportIDs maps the message id (delivery reports) or event id (tracking
// reports) of every stored report to its id, which its event has.
func reportIDs(t *testing.T, env *testEnv) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, kind := range []store.ReportKind{store.ReportDelivery, store.ReportTracking} {
		rs, err := env.store.ListReports(context.Background(), store.ReportQuery{Kind: kind, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			key := r.Key.MessageID
			if kind == store.ReportTracking {
				key = r.TrackingKey
			}
			out[key] = strconv.FormatInt(r.ID, 10)
		}
	}
	return out
}

// softBounceSuppression returns the suppression of softBounced, or nil.
func softBounceSuppression(t *testing.T, env *testEnv) *ibmailv1.Suppression {
	t.Helper()
	list, err := env.supps.ListSuppressions(context.Background(), &ibmailv1.ListSuppressionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range list.GetSuppressions() {
		if sp.GetEmail() == softBounced {
			return sp
		}
	}
	return nil
}

// N soft bounces of one address within the window, with no delivery
// between them, suppress it with origin soft-bounce limit, naming the
// bounces, for the cause's lifetime; a delivery resets the count; a limit
// of 0 never suppresses. (An expired suppression letting a send through is
// TestImportExportAndExpiry's: the check does not ask how a suppression
// came to be.)
func TestSoftBounceLimit(t *testing.T) {
	type post struct {
		tracking bool // a tracking webhook body, else a delivery report one
		items    []string
	}
	bounces := func(ids ...string) post {
		p := post{}
		for _, id := range ids {
			p.items = append(p.items, softBounceReport(id))
		}
		return p
	}
	delivered := func(id string) post { return post{items: []string{deliveredReport(id)}} }
	cases := []struct {
		name     string
		limit    int
		lifetime string // "": the default, 30 days
		posts    []post
		// wantCauses are the bounces the suppression names, the one that
		// reached the limit first; nil: no suppression.
		wantCauses []string
		wantLife   time.Duration // 0: for ever
	}{
		{name: "three bounces suppress", limit: 3,
			posts:      []post{bounces("b1"), bounces("b2"), bounces("b3")},
			wantCauses: []string{"b3", "b1", "b2"}, wantLife: 30 * 24 * time.Hour},
		{name: "two below the limit do not", limit: 3,
			posts: []post{bounces("b1"), bounces("b2")}},
		{name: "a delivery in between resets", limit: 3, lifetime: "7200s",
			posts:      []post{bounces("b1", "b2"), delivered("d1"), bounces("b3"), bounces("b4"), bounces("b5")},
			wantCauses: []string{"b5", "b3", "b4"}, wantLife: 2 * time.Hour},
		{name: "a delivery later in the same body resets its bounces", limit: 2,
			posts: []post{{items: []string{softBounceReport("b1"), deliveredReport("d1")}}, bounces("b2")}},
		{name: "a retried bounce counts once", limit: 2,
			posts: []post{bounces("b1"), bounces("b1"), bounces("b1")}},
		{name: "tracking soft bounces count, for ever by the rules", limit: 2, lifetime: "0s",
			posts: []post{
				{tracking: true, items: []string{trackingReport("LATE_BOUNCE", "t1", softBounced, nil)}},
				bounces("b1"),
			},
			wantCauses: []string{"b1", "t1"}},
		{name: "limit 0 never suppresses", limit: 0,
			posts: []post{bounces("b1", "b2", "b3", "b4", "b5", "b6"), bounces("b7")}},
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					env := newTestEnv(t, eng.opts...)
					putSoftBouncePolicy(t, env, c.limit, "3600s", c.lifetime)
					before := time.Now()
					for i, p := range c.posts {
						code, resp := 0, map[string]any(nil)
						if p.tracking {
							code, resp = env.postTracking(t, "["+strings.Join(p.items, ",")+"]")
						} else {
							code, resp = env.postWebhook(t, body(p.items...))
						}
						if code != 200 {
							t.Fatalf("post %d = %d %v", i, code, resp)
						}
					}
					sp := softBounceSuppression(t, env)
					if c.wantCauses == nil {
						if sp != nil {
							t.Fatalf("suppression %v, want none", sp)
						}
						return
					}
					if sp == nil {
						t.Fatal("no suppression, want one by the soft-bounce limit")
					}
					ids := reportIDs(t, env)
					var want []string
					for _, m := range c.wantCauses {
						want = append(want, ids[m])
					}
					if got := sp.GetCauseEventIds(); strings.Join(got, ",") != strings.Join(want, ",") {
						t.Errorf("cause events %v, want %v (of %v)", got, want, c.wantCauses)
					}
					if sp.GetOrigin() != ibmailv1.SuppressionOrigin_SUPPRESSION_ORIGIN_SOFT_BOUNCE_LIMIT || sp.GetReason() != "soft-bounce limit" ||
						sp.GetEventName() != "newsletter.softbounce" || sp.GetEventId() != want[0] {
						t.Errorf("suppression %v, want origin SOFT_BOUNCE_LIMIT, reason soft-bounce limit, event %s", sp, want[0])
					}
					created := sp.GetCreateTime().AsTime()
					if created.Before(before.Add(-time.Second)) || created.After(time.Now()) {
						t.Errorf("create time %v, want within the test", created)
					}
					var gotLife time.Duration
					if sp.GetExpireTime() != nil {
						gotLife = sp.GetExpireTime().AsTime().Sub(created)
					}
					if gotLife != c.wantLife {
						t.Errorf("suppression lasts %v, want %v", gotLife, c.wantLife)
					}
				})
			}
		})
	}
}

// A connection's webhook secret may count only the soft bounces of its
// own sends, as it may suppress only their addresses: bounces of an
// address it never sent to change no count.
func TestSoftBounceLimitUnderAConnectionsSecret(t *testing.T) {
	env := newTestEnv(t)
	putSoftBouncePolicy(t, env, 2, "3600s", "")
	conn, err := env.conns.CreateConnection(context.Background(), &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{
		Id: "eu", ApiKey: testAPIKey, BaseUrl: "https://eu1.api.infobip.com",
	}})
	if err != nil {
		t.Fatal(err)
	}
	byConnection := "/v1/webhooks/infobip/delivery-reports?token=" + conn.GetWebhookSecret()
	for _, id := range []string{"c1", "c2"} {
		if code, resp := env.do(t, http.MethodPost, byConnection, "application/json", []byte(body(softBounceReport(id)))); code != 200 || resp["accepted"] != 1.0 {
			t.Fatalf("webhook with the connection's secret = %d %v", code, resp)
		}
	}
	if sp := softBounceSuppression(t, env); sp != nil {
		t.Fatalf("suppression %v after the connection's bounces, want none", sp)
	}
	for _, id := range []string{"s1", "s2"} {
		if code, resp := env.postWebhook(t, body(softBounceReport(id))); code != 200 {
			t.Fatalf("webhook = %d %v", code, resp)
		}
	}
	sp := softBounceSuppression(t, env)
	ids := reportIDs(t, env)
	if got, want := strings.Join(sp.GetCauseEventIds(), ","), ids["s2"]+","+ids["s1"]; got != want {
		t.Errorf("cause events %s, want %s (s2, s1): the connection's bounces must not count", got, want)
	}
}
