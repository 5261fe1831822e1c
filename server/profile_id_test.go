package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// badProfileIDs break the one profile-id rule, each with the field part
// the refusal names.
var badProfileIDs = []struct {
	name, id, want string
}{
	{"too long", strings.Repeat("p", 201), "at most 200"},
	{"CR LF", "ann\r\nX-Forged: 1", "control characters"},
	{"TAB", "ann\tbob", "control characters"},
	{"line separator", "ann\u2028bob", "line separators"},
	{"right-to-left override", "ann\u202egnp.exe", "bidirectional"},
	{"pop directional isolate", "ann\u2069", "bidirectional"},
	{"leading slash", "/ann", "'/'"},
	{"double slash", "a//b", "'/'"},
	{"dot dot", "..", `".."`},
	{"dot segment", "a/./b", `"."`},
}

// A profile id is held to one rule wherever it enters: a report's
// callbackData (the report is refused, named and kept, the rest of the
// body stored), a send's recipients and the activity list's path. On the
// old code, the webhook stored every one of these ids.
func TestProfileIDsOneRuleEverywhere(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	provisionSender(t, env, "https://c1.api.infobip.com")
	reports := []string{withCallbackProfile(report("m-ok", "ok@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"), "ok")}
	for i, tt := range badProfileIDs {
		reports = append(reports, withCallbackProfile(report(fmt.Sprintf("m-%d", i), "x@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"), tt.id))
	}
	// An over-long address stands for the profile when callbackData
	// names none: it is held to the rule too (with room for 254).
	reports = append(reports, report("m-long-to", strings.Repeat("a", 250)+"@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"))
	code, got := env.postWebhook(t, body(reports...))
	if code != http.StatusOK || got["accepted"] != 1.0 {
		t.Fatalf("webhook = %d %v, want 200 with only m-ok accepted", code, got)
	}
	rejected, _ := got["rejected"].([]any)
	if len(rejected) != len(badProfileIDs)+1 {
		t.Fatalf("rejected = %v, want %d entries", rejected, len(badProfileIDs)+1)
	}
	for i, tt := range badProfileIDs {
		reason := rejected[i].(map[string]any)["reason"].(string)
		if want := fmt.Sprintf("results[%d]: callbackData.profileId: ", i+1); !strings.HasPrefix(reason, want) || !strings.Contains(reason, tt.want) {
			t.Errorf("%s: reason %q, want %q ... %q", tt.name, reason, want, tt.want)
		}
		if len(tt.id) > 3 && strings.Contains(reason, tt.id) {
			t.Errorf("%s: reason %q echoes the id", tt.name, reason)
		}
	}
	if reason := rejected[len(badProfileIDs)].(map[string]any)["reason"].(string); !strings.Contains(reason, "to: has 262 characters") {
		t.Errorf("long address: reason %q, want it named as to", reason)
	}
	if n := countRejected(t, env); n != len(badProfileIDs)+1 {
		t.Errorf("%d rejected payloads kept, want %d", n, len(badProfileIDs)+1)
	}

	for _, tt := range badProfileIDs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.sends.CreateSend(ctx, &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: "s", Text: "t",
				Recipients: []*ibmailv1.RecipientInput{{Email: "a@example.com", ProfileId: tt.id}}})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "recipients[0].profile_id: ") {
				t.Errorf("CreateSend: %v, want InvalidArgument naming recipients[0].profile_id", err)
			}
			_, err = env.people.ListProfileEvents(ctx, &ibmailv1.ListProfileEventsRequest{ProfileId: tt.id})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "profile_id: ") {
				t.Errorf("ListProfileEvents: %v, want InvalidArgument naming profile_id", err)
			}
		})
	}
}

// withCallbackProfile gives a report JSON a callbackData naming profile.
func withCallbackProfile(reportJSON, profile string) string {
	cb, _ := json.Marshal(map[string]string{"profileId": profile})
	q, _ := json.Marshal(string(cb))
	return strings.Replace(reportJSON, `"bulkId"`, `"callbackData":`+string(q)+`,"bulkId"`, 1)
}

// Every profile id the rule lets in can be read back, over gRPC and over
// REST with a real HTTP client, its characters escaped in the path as a
// client escapes them: '/' as %2F, '%', '?', '#', spaces, unicode.
func TestProfileIDsRoundTripOverRESTAndGRPC(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	ids := []string{"a/b", "a/b/c", "100%", "a%2Fb", "what?", "#1", "ann smith", "ünï 💌", "a:b", "a+b", "a;b=c", "a.b", "...", "über/..x", "ann@example.com"}
	var reports []string
	for i, id := range ids {
		reports = append(reports, withCallbackProfile(report(fmt.Sprintf("m-%d", i), "x@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"), id))
	}
	if code, got := env.postWebhook(t, body(reports...)); code != http.StatusOK || got["accepted"] != float64(len(ids)) {
		t.Fatalf("webhook = %d %v, want all %d accepted", code, got, len(ids))
	}
	for i, id := range ids {
		t.Run(id, func(t *testing.T) {
			path := "/v1/profiles/" + url.PathEscape(id) + "/events"
			code, got := env.do(t, http.MethodGet, path, "", nil)
			list, _ := got["events"].([]any)
			if code != http.StatusOK || len(list) != 1 {
				t.Fatalf("GET %s = %d %v, want the one event", path, code, got)
			}
			ev := list[0].(map[string]any)
			if ev["profileId"] != id || ev["params"].(map[string]any)["messageId"] != fmt.Sprintf("m-%d", i) {
				t.Errorf("GET %s: event %v, want profile %q", path, ev, id)
			}
			page, err := env.people.ListProfileEvents(ctx, &ibmailv1.ListProfileEventsRequest{ProfileId: id})
			if err != nil || len(page.GetEvents()) != 1 || page.GetEvents()[0].GetProfileId() != id {
				t.Errorf("gRPC ListProfileEvents(%q) = %v, %v", id, page, err)
			}
		})
	}
}
