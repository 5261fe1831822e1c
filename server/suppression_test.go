package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
)

// importCSV imports content through REST and returns the response.
func importCSV(t *testing.T, env *testEnv, content string) (int, map[string]any) {
	t.Helper()
	return env.doJSON(t, http.MethodPost, "/v1/suppressions:import", map[string]any{"format": "SUPPRESSION_FORMAT_CSV", "content": []byte(content)})
}

func (e *testEnv) get(t *testing.T, path string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(e.rest.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// An import keeps the good lines and names each bad one; an expired
// suppression no longer blocks a send; the list goes out as CSV and JSON
// and the JSON comes back in the same.
func TestImportExportAndExpiry(t *testing.T) {
	env, _ := sendingEnv(t, sandbox.Options{}, nil)
	ctx := context.Background()
	code, resp := importCSV(t, env, strings.Join([]string{
		"email,reason,create_time,expire_time,origin",
		"gone@example.com,moved from Acme,2024-01-01T00:00:00Z,,event",
		"was@example.com,old soft bounce,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,",
		"not an address,x,,,",
		"gone@example.com,again,,,",
		"late@example.com,x,,2023-01-01T00:00:00Z,",
		`spread@example.com,"=HYPERLINK(""http://evil"")",,,`,
		"odd@example.com,x,yesterday,,",
	}, "\n"))
	if code != 200 || resp["imported"] != 3.0 || resp["refused"] != 4.0 {
		t.Fatalf("import = %d %v, want 3 imported and 4 refused", code, resp)
	}
	var refused []string
	for _, e := range resp["errors"].([]any) {
		e := e.(map[string]any)
		refused = append(refused, toJSON(e["line"])+" "+e["field"].(string))
	}
	if got, want := strings.Join(refused, ", "), "4 email, 5 email, 6 expire_time, 8 create_time"; got != want {
		t.Errorf("refused lines %q, want %q", got, want)
	}
	if code, resp := importCSV(t, env, "email\ngone@example.com\n"); code != 200 || resp["alreadySuppressed"] != 1.0 || resp["imported"] != 0.0 {
		t.Errorf("importing a suppressed address again = %d %v, want it already suppressed", code, resp)
	}

	// The expired one is listed only when asked for, and lets a send through.
	_, list := env.doJSON(t, http.MethodGet, "/v1/suppressions", nil)
	if got := toJSON(list); strings.Contains(got, "was@example.com") || !strings.Contains(got, "SUPPRESSION_ORIGIN_IMPORT") {
		t.Errorf("list = %s, want the unexpired imports only", got)
	}
	_, all := env.doJSON(t, http.MethodGet, "/v1/suppressions?includeExpired=true", nil)
	if got := toJSON(all); !strings.Contains(got, `"expireTime":"2024-02-01T00:00:00Z"`) {
		t.Errorf("list with expired = %s, want was@example.com with its expiry", got)
	}
	send, err := env.sends.CreateSend(ctx, &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: "s", Text: "t", Recipients: []*ibmailv1.RecipientInput{
		{ProfileId: "was", Email: "was@example.com"}, {ProfileId: "gone", Email: "gone@example.com"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := env.sends.ListSendRecipients(ctx, &ibmailv1.ListSendRecipientsRequest{SendId: send.GetSend().GetId(), PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]ibmailv1.RecipientState{}
	for _, r := range rs.GetRecipients() {
		states[r.GetEmail()] = r.GetState()
	}
	if states["gone@example.com"] != ibmailv1.RecipientState_RECIPIENT_STATE_SUPPRESSED || states["was@example.com"] == ibmailv1.RecipientState_RECIPIENT_STATE_SUPPRESSED {
		t.Errorf("recipient states %v, want gone suppressed and was (expired) not", states)
	}

	// CSV: formula cells neutralised; JSON: taken back by an import.
	code, hdr, csvFile := env.get(t, "/v1/suppressions:export")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !strings.HasPrefix(csvFile, "email,reason,create_time,expire_time,origin\n") ||
		!strings.Contains(csvFile, `"'=HYPERLINK(""http://evil"")"`) || strings.Contains(csvFile, "was@example.com") {
		t.Errorf("CSV export = %d %v\n%s", code, hdr, csvFile)
	}
	code, _, jsonFile := env.get(t, "/v1/suppressions:export?format=json&includeExpired=true")
	var exported []map[string]any
	if code != 200 || json.Unmarshal([]byte(jsonFile), &exported) != nil || len(exported) != 3 {
		t.Fatalf("JSON export = %d\n%s", code, jsonFile)
	}
	other := newTestEnv(t)
	code, resp = other.doJSON(t, http.MethodPost, "/v1/suppressions:import", map[string]any{"format": "SUPPRESSION_FORMAT_JSON", "content": []byte(jsonFile)})
	if code != 200 || resp["imported"] != 3.0 || resp["refused"] != 0.0 {
		t.Errorf("JSON import of the export = %d %v, want all 3", code, resp)
	}
	for _, bad := range []string{"?format=xml", "?includeExpired=maybe", "?format=csv&format=json", "?other=1"} {
		if code, _, body := env.get(t, "/v1/suppressions:export"+bad); code != 400 || !strings.Contains(body, "INVALID_ARGUMENT") {
			t.Errorf("export%s = %d %s, want 400 naming the parameter", bad, code, body)
		}
	}
}

// A suppression's lifetime is its cause's in the rules in force when it
// was made.
func TestSuppressionLifetimeFromTheRules(t *testing.T) {
	env := newTestEnv(t)
	set := rulesWithNewGroup(t)
	set["suppressionLifetimes"] = []any{map[string]any{"cause": "newsletter.hardbounce", "lifetime": "3600s"}}
	if code, resp := env.doJSON(t, http.MethodPut, "/v1/rules", map[string]any{"rules": set}); code != 200 {
		t.Fatalf("PUT /v1/rules = %d %v", code, resp)
	}
	before := time.Now()
	if code, resp := env.postWebhook(t, body(report("m-hb", "hb@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"))); code != 200 || resp["accepted"] != 1.0 {
		t.Fatalf("webhook = %d %v", code, resp)
	}
	list, err := env.supps.ListSuppressions(context.Background(), &ibmailv1.ListSuppressionsRequest{})
	if err != nil || len(list.GetSuppressions()) != 1 {
		t.Fatalf("suppressions = %v, %v", list, err)
	}
	sp := list.GetSuppressions()[0]
	if got := sp.GetExpireTime().AsTime().Sub(sp.GetCreateTime().AsTime()); got != time.Hour || sp.GetCreateTime().AsTime().Before(before.Add(-time.Second)) {
		t.Errorf("suppression %v lasts %v, want an hour", sp, got)
	}
	if sp.GetOrigin() != ibmailv1.SuppressionOrigin_SUPPRESSION_ORIGIN_EVENT || len(sp.GetCauseEventIds()) != 1 || sp.GetCauseEventIds()[0] != sp.GetEventId() {
		t.Errorf("suppression %v, want origin EVENT held by its event", sp)
	}
}

// The export route checks the caller's token before its parameters, as
// the gateway's routes do: a caller without the role learns nothing of the
// route's parameters.
func TestSuppressionExportChecksTheTokenFirst(t *testing.T) {
	env := newTestEnv(t, withServerOptions(func(o *server.Options) { o.Tokens = testTokens(t) }))
	for _, tc := range []struct {
		name, token, query string
		want               int
		reason             string
	}{
		{"no token, bad format", "", "?format=xml", 401, "TOKEN_MISSING"},
		{"read token, bad format", readToken, "?format=xml", 403, "PERMISSION_DENIED"},
		{"admin token, bad format", adminToken, "?format=xml", 400, "INVALID_ARGUMENT"},
		{"no token", "", "", 401, "TOKEN_MISSING"},
		{"admin token", adminToken, "?format=json", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, resp := env.do(t, http.MethodGet, server.SuppressionExportPath+tc.query, "", nil, bearer(tc.token))
			if code != tc.want || (tc.reason != "" && restReason(resp) != tc.reason) {
				t.Errorf("GET %s = %d %v, want %d %s", tc.query, code, resp, tc.want, tc.reason)
			}
		})
	}
}
