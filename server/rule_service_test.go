package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store"
)

// newGroupReport is a bounce of an error group the built-in rules do not
// know, so UNCLASSIFIED until a rule covers it.
func newGroupReport(messageID string) string {
	return report(messageID, messageID+"@example.com", 7001, "EC_BRAND_NEW", 7, "BRAND_NEW")
}

// rulesWithNewGroup is the built-in rule set plus a rule for group 7.
func rulesWithNewGroup(t *testing.T) map[string]any {
	t.Helper()
	var set map[string]any
	if err := json.Unmarshal([]byte(defaultRuleSetJSON), &set); err != nil {
		t.Fatal(err)
	}
	set["rules"] = append(set["rules"].([]any), map[string]any{"groupId": 7, "groupName": "BRAND_NEW", "event": "newsletter.hardbounce"})
	return set
}

func (e *testEnv) doJSON(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	return e.do(t, method, path, "application/json", raw)
}

func rulesVersionOf(resp map[string]any) string {
	r, _ := resp["rules"].(map[string]any)
	v, _ := r["version"].(string)
	return v
}

// A rule change through one replica comes into force on the other, which
// then classifies with it and records the version with each report.
func TestRuleChangeReachesTheOtherReplica(t *testing.T) {
	fast := withServerOptions(func(o *server.Options) { o.RulesPoll = 20 * time.Millisecond })
	a := newTestEnv(t, withPostgres(), fast)
	b := newTestEnv(t, withReplicaOf(a), fast)

	code, got := b.doJSON(t, http.MethodGet, "/v1/rules", nil)
	if code != 200 || rulesVersionOf(got) != "0" || got["rules"].(map[string]any)["source"] != "RULE_SOURCE_DEFAULT" {
		t.Fatalf("GET /v1/rules before any change = %d %v, want version 0 from the defaults", code, got)
	}
	if code, resp := b.postWebhook(t, body(newGroupReport("before"))); code != 200 || resp["accepted"] != 1.0 {
		t.Fatalf("webhook = %d %v", code, resp)
	}

	code, put := a.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": rulesWithNewGroup(t), "comment": "Infobip's new group 7"})
	if code != 200 || rulesVersionOf(put) != "1" {
		t.Fatalf("PUT /v1/rules = %d %v, want version 1", code, put)
	}
	if v := put["rules"].(map[string]any); v["createdBy"] != "anonymous" || v["comment"] != "Infobip's new group 7" || v["source"] != "RULE_SOURCE_STORE" || v["createTime"] == nil {
		t.Errorf("the stored version = %v, want who, why, when and source", v)
	}
	waitFor(t, "replica b to take up version 1", 20*time.Second, func() (bool, string) {
		_, got := b.doJSON(t, http.MethodGet, "/v1/rules", nil)
		return rulesVersionOf(got) == "1", toJSON(got["rules"].(map[string]any)["version"])
	})
	if code, resp := b.postWebhook(t, body(newGroupReport("after"))); code != 200 || resp["accepted"] != 1.0 {
		t.Fatalf("webhook = %d %v", code, resp)
	}
	_, list := b.doJSON(t, http.MethodGet, "/v1/deliveryReports?pageSize=10", nil)
	seen := map[string]string{}
	for _, r := range list["reports"].([]any) {
		r := r.(map[string]any)
		c := r["classification"].(map[string]any)
		version, _ := r["rulesVersion"].(string)
		seen[r["report"].(map[string]any)["messageId"].(string)] = fmt.Sprint(c["outcome"], " ", c["eventName"], " v", version)
	}
	want := map[string]string{
		"before": "REPORT_OUTCOME_UNCLASSIFIED  v0",
		"after":  "REPORT_OUTCOME_EVENT newsletter.hardbounce v1",
	}
	for id, w := range want {
		if seen[id] != w {
			t.Errorf("report %s = %q, want %q", id, seen[id], w)
		}
	}
}

// The API refuses what does not validate, naming the rule; an edit based on
// a stale version; and keeps every version, restorable.
func TestRuleVersionsAndRefusals(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			env := newTestEnv(t, eng.opts...)
			bad := rulesWithNewGroup(t)
			rs := bad["rules"].([]any)
			rs[len(rs)-1].(map[string]any)["event"] = "Not An Event"
			code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": bad})
			field := fmt.Sprintf("rules.rules[%d]", len(rs)-1)
			if code != 400 || restReason(resp) != "RULES_INVALID" || !strings.Contains(toJSON(resp), field) {
				t.Errorf("PUT of an invalid rule = %d %v, want 400 RULES_INVALID naming %s", code, resp, field)
			}
			if code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": map[string]any{"rules": []any{}}}); code != 400 || restReason(resp) != "RULES_INVALID" {
				t.Errorf("PUT of an empty rule list = %d %v, want 400 RULES_INVALID", code, resp)
			}
			if code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": rulesWithNewGroup(t), "comment": "bad\u202eRTL"}); code != 400 || !strings.Contains(toJSON(resp), "comment") {
				t.Errorf("PUT with a bidi control in the comment = %d %v, want 400 naming comment", code, resp)
			}
			for i := 1; i <= 2; i++ {
				if code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": rulesWithNewGroup(t), "baseVersion": i - 1}); code != 200 || rulesVersionOf(resp) != fmt.Sprint(i) {
					t.Fatalf("PUT %d = %d %v", i, code, resp)
				}
			}
			if code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": rulesWithNewGroup(t), "baseVersion": 1}); code != 409 || restReason(resp) != "RULES_VERSION_STALE" {
				t.Errorf("PUT based on version 1 after 2 = %d %v, want 409 RULES_VERSION_STALE", code, resp)
			}
			code, resp = env.doJSON(t, http.MethodPost, "/v1/rules/versions/1:restore", map[string]any{"comment": "back"})
			if code != 200 || rulesVersionOf(resp) != "3" || resp["rules"].(map[string]any)["restoredFrom"] != "1" {
				t.Fatalf("restore of 1 = %d %v, want version 3 restored from 1", code, resp)
			}
			if code, resp := env.doJSON(t, http.MethodGet, "/v1/rules/versions/9", nil); code != 404 {
				t.Errorf("GET of a missing version = %d %v, want 404", code, resp)
			}
			var versions []string
			for tok := ""; ; {
				_, page := env.doJSON(t, http.MethodGet, "/v1/rules/versions?pageSize=2&pageToken="+tok, nil)
				for _, v := range page["versions"].([]any) {
					versions = append(versions, v.(map[string]any)["version"].(string))
				}
				tok, _ = page["nextPageToken"].(string)
				if tok == "" {
					break
				}
			}
			if strings.Join(versions, ",") != "3,2,1" {
				t.Errorf("versions listed %v, want 3,2,1", versions)
			}
		})
	}
}

// rules:test says what a proposed rule set would change, on given and on
// stored reports, and stores nothing.
func TestTestRulesWritesNothing(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	if code, resp := env.postWebhook(t, body(newGroupReport("stored-1"), report("stored-2", "s2@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"))); code != 200 || resp["accepted"] != 2.0 {
		t.Fatalf("webhook = %d %v", code, resp)
	}
	var given map[string]any
	if err := json.Unmarshal([]byte(newGroupReport("given")), &given); err != nil {
		t.Fatal(err)
	}
	reportsBefore, _ := env.store.ListReports(ctx, store.ReportQuery{Limit: 100})
	code, resp := env.doJSON(t, http.MethodPost, "/v1/rules:test", map[string]any{"rules": rulesWithNewGroup(t), "reports": []any{given}, "lastStored": 10})
	if code != 200 {
		t.Fatalf("rules:test = %d %v", code, resp)
	}
	// The given report and stored-1 change; stored-2 is examined, unchanged
	// and not listed.
	if resp["examined"] != 3.0 || resp["changed"] != 2.0 {
		t.Errorf("rules:test = %v, want 3 examined, 2 changed", resp)
	}
	var sources []string
	for _, r := range resp["results"].([]any) {
		r := r.(map[string]any)
		sources = append(sources, fmt.Sprint(r["source"], ":", r["proposed"].(map[string]any)["eventName"]))
	}
	if len(sources) != 2 || sources[0] != "reports[0]:newsletter.hardbounce" || !strings.HasPrefix(sources[1], "deliveryReports/") {
		t.Errorf("results %v, want reports[0] and the stored report that changes", sources)
	}
	reportsAfter, _ := env.store.ListReports(ctx, store.ReportQuery{Limit: 100})
	if _, err := env.store.LatestRuleVersion(ctx); err == nil || len(reportsAfter) != len(reportsBefore) {
		t.Errorf("rules:test stored something: version err %v, reports %d then %d", err, len(reportsBefore), len(reportsAfter))
	}
	if code, resp := env.doJSON(t, http.MethodPost, "/v1/rules:test", map[string]any{"rules": rulesWithNewGroup(t), "lastStored": 10001}); code != 400 || !strings.Contains(toJSON(resp), "last_stored") {
		t.Errorf("rules:test with lastStored 10001 = %d %v, want 400 naming last_stored", code, resp)
	}
}

// With --rules-file the file is the authority: the rules are shown, and
// changes are refused with a reason saying so.
func TestRulesFileIsTheAuthority(t *testing.T) {
	engine, err := classifier.NewFromSet(classifier.DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t, withServerOptions(func(o *server.Options) { o.Engine, o.RulesFromFile = engine, true }))
	_, got := env.doJSON(t, http.MethodGet, "/v1/rules", nil)
	if got["rules"].(map[string]any)["source"] != "RULE_SOURCE_FILE" {
		t.Errorf("GET /v1/rules = %v, want source FILE", got)
	}
	for _, c := range []struct{ method, path string }{{http.MethodPut, "/v1/rules"}, {http.MethodPost, "/v1/rules/versions/1:restore"}} {
		code, resp := env.doJSON(t, c.method, c.path, map[string]any{"rules": rulesWithNewGroup(t)})
		if code != 400 || restReason(resp) != "RULES_FROM_FILE" || !strings.Contains(toJSON(resp), "rules file") {
			t.Errorf("%s %s = %d %v, want 400 RULES_FROM_FILE", c.method, c.path, code, resp)
		}
	}
	// gRPC callers get the same reason.
	_, err = ibmailv1.NewRuleServiceClient(env.conn).UpdateRules(context.Background(), &ibmailv1.UpdateRulesRequest{})
	if reasonOfErr(err) != "RULES_FROM_FILE" {
		t.Errorf("gRPC UpdateRules = %v, want RULES_FROM_FILE", err)
	}
}
