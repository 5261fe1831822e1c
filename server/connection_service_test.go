package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

const testAPIKey = "0123456789abcdef0123456789abcdef-key9"

func TestConnectionValidation(t *testing.T) {
	env := newTestEnv(t)
	long := strings.Repeat("x", 256)
	tests := []struct {
		name      string
		conn      *ibmailv1.Connection
		wantField string
	}{
		{"no base URL", &ibmailv1.Connection{ApiKey: testAPIKey}, "base_url"},
		{"not Infobip", &ibmailv1.Connection{ApiKey: testAPIKey, BaseUrl: "https://evil.example.com"}, "base_url"},
		{"plain http Infobip", &ibmailv1.Connection{ApiKey: testAPIKey, BaseUrl: "http://abc.api.infobip.com"}, "base_url"},
		{"lookalike host", &ibmailv1.Connection{ApiKey: testAPIKey, BaseUrl: "https://abc.api.infobip.com.evil.io"}, "base_url"},
		{"metadata address", &ibmailv1.Connection{ApiKey: testAPIKey, BaseUrl: "http://169.254.169.254"}, "base_url"},
		{"credentials in URL", &ibmailv1.Connection{ApiKey: testAPIKey, BaseUrl: "https://u:p@abc.api.infobip.com"}, "base_url"},
		{"path", &ibmailv1.Connection{ApiKey: testAPIKey, BaseUrl: "https://abc.api.infobip.com/email"}, "base_url"},
		{"no API key", &ibmailv1.Connection{BaseUrl: "https://abc.api.infobip.com"}, "api_key"},
		{"API key with space", &ibmailv1.Connection{ApiKey: "abc def", BaseUrl: "https://abc.api.infobip.com"}, "api_key"},
		{"application id too long", &ibmailv1.Connection{ApiKey: testAPIKey, BaseUrl: "https://abc.api.infobip.com", ApplicationId: long}, "application_id"},
		{"entity id too long", &ibmailv1.Connection{ApiKey: testAPIKey, BaseUrl: "https://abc.api.infobip.com", EntityId: long}, "entity_id"},
		{"bad id", &ibmailv1.Connection{Id: "Bad ID", ApiKey: testAPIKey, BaseUrl: "https://abc.api.infobip.com"}, "connection.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.conns.CreateConnection(context.Background(), &ibmailv1.CreateConnectionRequest{Connection: tt.conn})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			msg := status.Convert(err).Message()
			if !strings.Contains(msg, tt.wantField) {
				t.Errorf("message %q does not name %s", msg, tt.wantField)
			}
			if strings.Contains(msg, testAPIKey) || strings.Contains(msg, "abc def") {
				t.Errorf("message echoes the API key: %q", msg)
			}
		})
	}
}

func TestConnectionLifecycleNeverShowsKey(t *testing.T) {
	env := newTestEnv(t)
	body := `{"id":"acme","displayName":"Acme","apiKey":"` + testAPIKey + `","baseUrl":"https://ACME.api.infobip.com/","applicationId":"app-1","entityId":"ent-1"}`
	code, created := env.do(t, http.MethodPost, "/v1/connections", "application/json", []byte(body))
	if code != http.StatusOK {
		t.Fatalf("create: %d %v", code, created)
	}
	conn := created["connection"].(map[string]any)
	want := map[string]any{"id": "acme", "displayName": "Acme", "baseUrl": "https://acme.api.infobip.com",
		"applicationId": "app-1", "entityId": "ent-1", "apiKeyHint": "…key9", "apiKey": ""}
	for k, v := range want {
		if conn[k] != v {
			t.Errorf("connection.%s = %v, want %v", k, conn[k], v)
		}
	}
	if s, _ := created["webhookSecret"].(string); len(s) < 20 {
		t.Errorf("webhookSecret = %q, want a fresh secret shown once", s)
	}

	code, got := env.do(t, http.MethodPatch, "/v1/connections/acme", "application/json", []byte(`{"displayName":"Acme EU","apiKey":"new-key-0000000000000000000000000000wxyz"}`))
	if code != http.StatusOK {
		t.Fatalf("patch: %d %v", code, got)
	}
	if c := got["connection"].(map[string]any); c["displayName"] != "Acme EU" || c["apiKeyHint"] != "…wxyz" || c["entityId"] != "ent-1" {
		t.Errorf("after patch: %v; want name and key changed, entity id kept", c)
	}
	code, got = env.do(t, http.MethodGet, "/v1/connections", "", nil)
	if code != http.StatusOK || len(got["connections"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, got)
	}
	for _, path := range []string{"/v1/connections", "/v1/connections/acme"} {
		_, got := env.do(t, http.MethodGet, path, "", nil)
		if raw := toJSON(got); strings.Contains(raw, testAPIKey) || strings.Contains(raw, "new-key-0000") {
			t.Errorf("GET %s shows an API key: %s", path, raw)
		}
	}
	if strings.Contains(env.logs.String(), testAPIKey) || strings.Contains(env.logs.String(), "new-key-0000") {
		t.Error("an API key appears in the log")
	}

	code, _ = env.do(t, http.MethodPost, "/v1/connections", "application/json", []byte(body))
	if code != http.StatusConflict {
		t.Errorf("second create with the same id: %d, want 409", code)
	}
	code, _ = env.do(t, http.MethodDelete, "/v1/connections/acme", "", nil)
	if code != http.StatusOK {
		t.Errorf("delete: %d", code)
	}
	code, got = env.do(t, http.MethodGet, "/v1/connections/acme", "", nil)
	if code != http.StatusNotFound || !strings.Contains(toJSON(got), "acme") {
		t.Errorf("get after delete: %d %v, want 404 naming acme", code, got)
	}
}

func TestConnectionWebhookSecretAttributesReports(t *testing.T) {
	env := newTestEnv(t)
	resp, err := env.conns.CreateConnection(context.Background(), &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{
		Id: "eu", ApiKey: testAPIKey, BaseUrl: "https://eu1.api.infobip.com",
	}})
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/webhooks/infobip/delivery-reports?token=" + resp.GetWebhookSecret()
	code, got := env.do(t, http.MethodPost, path, "application/json", []byte(body(report("m-eu", "eu@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"))))
	if code != http.StatusOK {
		t.Fatalf("webhook with the connection's secret: %d %v", code, got)
	}
	list, err := env.reports.ListDeliveryReports(context.Background(), &ibmailv1.ListDeliveryReportsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetReports()) != 1 || list.GetReports()[0].GetConnectionId() != "eu" {
		t.Errorf("stored reports = %v, want one attributed to connection eu", list.GetReports())
	}
	if strings.Contains(env.logs.String(), resp.GetWebhookSecret()) {
		t.Error("the connection's webhook secret appears in the log")
	}
}

func TestConnectionUpdateMask(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	if _, err := env.conns.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{
		Id: "c1", ApiKey: testAPIKey, BaseUrl: "https://c1.api.infobip.com",
	}}); err != nil {
		t.Fatal(err)
	}
	_, err := env.conns.UpdateConnection(ctx, &ibmailv1.UpdateConnectionRequest{ConnectionId: "c1", Connection: &ibmailv1.Connection{Id: "other"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"id"}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "update_mask") {
		t.Errorf("changing the id: %v, want InvalidArgument naming update_mask", err)
	}
	_, err = env.conns.UpdateConnection(ctx, &ibmailv1.UpdateConnectionRequest{ConnectionId: "c1", Connection: &ibmailv1.Connection{BaseUrl: "https://evil.example.com"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"base_url"}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("moving the base URL off Infobip: %v, want InvalidArgument", err)
	}
}
