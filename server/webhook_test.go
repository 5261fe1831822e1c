package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/server"
)

func TestWebhookAuthentication(t *testing.T) {
	env := newTestEnv(t)
	b := []byte(body(report("m-auth", "a@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED")))
	tests := []struct {
		name   string
		path   string
		mutate func(*http.Request)
		want   int
	}{
		{"no credential", server.WebhookPath, func(*http.Request) {}, http.StatusUnauthorized},
		{"wrong basic password", server.WebhookPath, basicAuth("infobip", "nope"), http.StatusUnauthorized},
		{"secret as basic user name only", server.WebhookPath, basicAuth(testSecret, ""), http.StatusUnauthorized},
		{"wrong token", server.WebhookPath + "?token=nope", func(*http.Request) {}, http.StatusUnauthorized},
		{"bearer is not basic", server.WebhookPath, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testSecret) }, http.StatusUnauthorized},
		{"basic, any user name", server.WebhookPath, basicAuth("whoever", testSecret), http.StatusOK},
		{"token query parameter", server.WebhookPath + "?token=" + testSecret, func(*http.Request) {}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, got := env.do(t, http.MethodPost, tt.path, "application/json", b, tt.mutate)
			if code != tt.want {
				t.Fatalf("status = %d, want %d (body %v)", code, tt.want, got)
			}
			if code == http.StatusUnauthorized && strings.Contains(toJSON(got), testSecret) {
				t.Errorf("401 body echoes the secret: %v", got)
			}
		})
	}
	if strings.Contains(env.logs.String(), testSecret) {
		t.Errorf("the webhook secret appears in the log")
	}
}

func TestWebhookGRPCAuthentication(t *testing.T) {
	env := newTestEnv(t)
	req := &ibmailv1.IngestDeliveryReportsRequest{Results: []*ibmailv1.DeliveryReport{{MessageId: "m-g", To: "g@example.com"}}}
	_, err := env.reports.IngestDeliveryReports(context.Background(), req)
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no credential: err = %v, want Unauthenticated", err)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+testSecret))
	for name, md := range map[string]metadata.MD{
		"basic": metadata.Pairs("authorization", basic),
		"token": metadata.Pairs("x-ibmail-webhook-token", testSecret),
	} {
		ctx := metadata.NewOutgoingContext(context.Background(), md)
		if _, err := env.reports.IngestDeliveryReports(ctx, req); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestWebhookStoresClassifiesAndDeduplicates(t *testing.T) {
	env := newTestEnv(t)
	b := body(
		report("m-1", "Ann@Example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"),
		report("m-2", "bob@example.com", 0, "NO_ERROR", 0, "OK"),
		report("m-3", "cy@example.com", 6099, "EC_NEW", 9, "NEW_GROUP"),
	)
	code, got := env.postWebhook(t, b)
	if code != http.StatusOK {
		t.Fatalf("status = %d, body %v", code, got)
	}
	want := map[string]float64{"accepted": 3, "duplicates": 0, "events": 1, "unclassified": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// Infobip retries: three more copies change nothing.
	for range 3 {
		code, got = env.postWebhook(t, b)
		if code != http.StatusOK || got["accepted"] != 0.0 || got["duplicates"] != 3.0 {
			t.Fatalf("retry: status %d, body %v; want 200 with 0 accepted, 3 duplicates", code, got)
		}
	}
	code, events := env.do(t, http.MethodGet, "/v1/profiles/ann@example.com/events", "", nil)
	if code != http.StatusOK {
		t.Fatalf("events: %d %v", code, events)
	}
	list, _ := events["events"].([]any)
	if len(list) != 1 {
		t.Fatalf("ann has %d events, want 1: %v", len(list), events)
	}
	ev := list[0].(map[string]any)
	if ev["action"] != "newsletter.hardbounce" || ev["profileId"] != "ann@example.com" || ev["email"] != "ann@example.com" {
		t.Errorf("event = %v", ev)
	}
	if ev["time"] != "2024-05-01T10:00:00Z" {
		t.Errorf("time = %v, want the report's doneAt 2024-05-01T10:00:00Z", ev["time"])
	}
	params, _ := ev["params"].(map[string]any)
	for k, v := range map[string]string{"messageId": "m-1", "bulkId": "bulk-1", "errorId": "6012", "errorName": "EC_HARD_BOUNCE",
		"errorGroupName": "BOUNCED", "permanent": "true", "statusName": "UNDELIVERABLE_REJECTED_OPERATOR", "smtpResponse": "550 5.1.1 user unknown"} {
		if params[k] != v {
			t.Errorf("params[%s] = %v, want %q", k, params[k], v)
		}
	}
	if r, _ := params["rule"].(string); r == "" {
		t.Errorf("params lack the rule")
	}

	code, unc := env.do(t, http.MethodGet, "/v1/deliveryReports?outcome=REPORT_OUTCOME_UNCLASSIFIED", "", nil)
	reports, _ := unc["reports"].([]any)
	if code != http.StatusOK || len(reports) != 1 {
		t.Fatalf("unclassified listing: %d %v", code, unc)
	}
	if id := reports[0].(map[string]any)["report"].(map[string]any)["messageId"]; id != "m-3" {
		t.Errorf("unclassified report = %v, want m-3", id)
	}
}

func TestWebhookProfileFromCallbackData(t *testing.T) {
	env := newTestEnv(t)
	r := strings.Replace(report("m-cb", "x@example.com", 6011, "EC_SOFT_BOUNCE", 2, "BOUNCED"),
		`"bulkId"`, `"callbackData":"{\"profileId\":\"cust-42\"}","bulkId"`, 1)
	if code, got := env.postWebhook(t, body(r)); code != http.StatusOK {
		t.Fatalf("status = %d, %v", code, got)
	}
	_, got := env.do(t, http.MethodGet, "/v1/profiles/cust-42/events", "", nil)
	list, _ := got["events"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["email"] != "x@example.com" {
		t.Errorf("cust-42 events = %v, want one for x@example.com", got)
	}
}

func TestWebhookBadInput(t *testing.T) {
	env := newTestEnv(t)
	auth := basicAuth("infobip", testSecret)
	tests := []struct {
		name        string
		contentType string
		body        []byte
		wantCode    int
		wantInMsg   string
		wantKept    bool
	}{
		{"malformed JSON", "application/json", []byte(`{"results":[{"messageId":`), http.StatusBadRequest, "body", true},
		{"not Infobip's shape", "application/json", []byte(`{"results":"nope"}`), http.StatusBadRequest, "results", true},
		{"no results", "application/json", []byte(`{"something":"else"}`), http.StatusBadRequest, "results", true},
		{"XML", "application/xml", []byte(`<reportResponse/>`), http.StatusUnsupportedMediaType, "application/json", false},
		{"oversized", "application/json", bytes.Repeat([]byte(" "), 2<<20), http.StatusRequestEntityTooLarge, "limit", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := countRejected(t, env)
			code, got := env.do(t, http.MethodPost, server.WebhookPath, tt.contentType, tt.body, auth)
			if code != tt.wantCode {
				t.Fatalf("status = %d, want %d (%v)", code, tt.wantCode, got)
			}
			if msg, _ := got["message"].(string); !strings.Contains(msg, tt.wantInMsg) {
				t.Errorf("message %q does not name %q", msg, tt.wantInMsg)
			}
			kept := countRejected(t, env) - before
			if tt.wantKept && kept != 1 {
				t.Errorf("kept %d rejected payloads, want the raw body kept once", kept)
			}
			if !tt.wantKept && kept != 0 {
				t.Errorf("kept %d rejected payloads, want none", kept)
			}
		})
	}
	_, got := env.do(t, http.MethodGet, "/v1/rejectedPayloads?pageSize=1", "", nil)
	p := got["payloads"].([]any)[0].(map[string]any)
	raw, _ := base64.StdEncoding.DecodeString(p["body"].(string))
	if string(raw) != `{"something":"else"}` {
		t.Errorf("newest kept body = %q, want the raw body as sent", raw)
	}
}

func TestWebhookRejectsReportWithoutMessageIDKeepsRest(t *testing.T) {
	env := newTestEnv(t)
	b := body(
		report("m-ok", "ok@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"),
		report("", "bad@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"),
		strings.Replace(report("m-time", "t@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"), "2024-05-01T10:00:00.000+0000", "yesterday", 1),
		strings.Replace(report("m-nul", "n@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"), "550 5.1.1", `550\u0000`, 1),
	)
	code, got := env.postWebhook(t, b)
	if code != http.StatusOK {
		t.Fatalf("status = %d, %v", code, got)
	}
	if got["accepted"] != 1.0 {
		t.Errorf("accepted = %v, want 1", got["accepted"])
	}
	rejected, _ := got["rejected"].([]any)
	if len(rejected) != 3 {
		t.Fatalf("rejected = %v, want 3 entries", got["rejected"])
	}
	for i, want := range []string{"results[1]: messageId is missing", "results[2]: doneAt", "results[3]: a field holds a NUL"} {
		if r := rejected[i].(map[string]any)["reason"].(string); !strings.HasPrefix(r, want) {
			t.Errorf("rejected[%d] reason = %q, want prefix %q", i, r, want)
		}
	}
	if n := countRejected(t, env); n != 3 {
		t.Errorf("%d rejected payloads kept, want 3", n)
	}
	_, ev := env.do(t, http.MethodGet, "/v1/profiles/ok@example.com/events", "", nil)
	if list, _ := ev["events"].([]any); len(list) != 1 {
		t.Errorf("the valid report of the batch was not kept: %v", ev)
	}
}

func countRejected(t *testing.T, env *testEnv) int {
	t.Helper()
	_, got := env.do(t, http.MethodGet, "/v1/rejectedPayloads?pageSize=1000", "", nil)
	list, _ := got["payloads"].([]any)
	return len(list)
}

// TestWebhookAnswers503WhenTheStoreIsGone: Infobip retries anything but a
// 200, so a store that cannot take the reports must never get one.
func TestWebhookAnswers503WhenTheStoreIsGone(t *testing.T) {
	env := newTestEnv(t)
	if err := env.store.Close(); err != nil {
		t.Fatal(err)
	}
	code, got := env.postWebhook(t, body(report("m-503", "a@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED")))
	if code != http.StatusServiceUnavailable || !strings.Contains(toJSON(got), "STORE_UNAVAILABLE") {
		t.Errorf("webhook with the store closed: %d %v, want 503 STORE_UNAVAILABLE", code, got)
	}
	// Readiness follows the store, liveness does not: a restart would not
	// bring the store back.
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/readyz", http.StatusServiceUnavailable},
		{"/healthz", http.StatusOK},
	} {
		if got, _ := env.do(t, http.MethodGet, tc.path, "", nil); got != tc.want {
			t.Errorf("GET %s with the store closed = %d, want %d", tc.path, got, tc.want)
		}
	}
}
