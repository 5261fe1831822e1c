package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// provisionSender creates connection c1 (at baseURL) and sender s1 on it.
func provisionSender(t *testing.T, env *testEnv, baseURL string) {
	t.Helper()
	ctx := context.Background()
	if _, err := env.conns.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{
		Id: "c1", ApiKey: testAPIKey, BaseUrl: baseURL,
	}}); err != nil {
		t.Fatalf("create connection: %v", err)
	}
	if _, err := env.senders.CreateSender(ctx, &ibmailv1.CreateSenderRequest{Sender: &ibmailv1.Sender{
		Id: "s1", ConnectionId: "c1", FromAddress: "news@example.com", FromName: "Example News", ReplyTo: "help@example.com",
	}}); err != nil {
		t.Fatalf("create sender: %v", err)
	}
}

func TestSenderValidation(t *testing.T) {
	env := newTestEnv(t)
	provisionSender(t, env, "https://c1.api.infobip.com")
	tests := []struct {
		name      string
		sender    *ibmailv1.Sender
		wantCode  codes.Code
		wantField string
	}{
		{"bad from", &ibmailv1.Sender{ConnectionId: "c1", FromAddress: "not an address"}, codes.InvalidArgument, "from_address"},
		{"display name in from", &ibmailv1.Sender{ConnectionId: "c1", FromAddress: "Ann <ann@example.com>"}, codes.InvalidArgument, "from_address"},
		{"bad reply-to", &ibmailv1.Sender{ConnectionId: "c1", FromAddress: "a@example.com", ReplyTo: "x@"}, codes.InvalidArgument, "reply_to"},
		{"header injection in name", &ibmailv1.Sender{ConnectionId: "c1", FromAddress: "a@example.com", FromName: "x\r\nBcc: all@example.com"}, codes.InvalidArgument, "from_name"},
		{"angle brackets in name", &ibmailv1.Sender{ConnectionId: "c1", FromAddress: "a@example.com", FromName: "x <y@z.com>"}, codes.InvalidArgument, "from_name"},
		{"no connection", &ibmailv1.Sender{FromAddress: "a@example.com"}, codes.InvalidArgument, "connection_id"},
		{"unknown connection", &ibmailv1.Sender{ConnectionId: "nope", FromAddress: "a@example.com"}, codes.FailedPrecondition, "nope"},
		{"taken id", &ibmailv1.Sender{Id: "s1", ConnectionId: "c1", FromAddress: "a@example.com"}, codes.AlreadyExists, "s1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.senders.CreateSender(context.Background(), &ibmailv1.CreateSenderRequest{Sender: tt.sender})
			if status.Code(err) != tt.wantCode || !strings.Contains(status.Convert(err).Message(), tt.wantField) {
				t.Errorf("err = %v, want %v naming %s", err, tt.wantCode, tt.wantField)
			}
		})
	}
	code, got := env.do(t, http.MethodGet, "/v1/senders/s1", "", nil)
	s, _ := got["sender"].(map[string]any)
	if code != http.StatusOK || s["fromAddress"] != "news@example.com" || s["connectionId"] != "c1" || s["replyTo"] != "help@example.com" {
		t.Errorf("GET sender: %d %v", code, got)
	}
	code, _ = env.do(t, http.MethodDelete, "/v1/connections/c1", "", nil)
	if code != http.StatusPreconditionFailed && code != http.StatusBadRequest {
		t.Errorf("deleting a connection with senders: %d, want a refusal", code)
	}
}

func TestCreateSendValidation(t *testing.T) {
	env := newTestEnv(t)
	provisionSender(t, env, "https://c1.api.infobip.com")
	one := []*ibmailv1.RecipientInput{{Email: "a@example.com"}}
	tests := []struct {
		name      string
		req       *ibmailv1.CreateSendRequest
		wantCode  codes.Code
		wantField string
	}{
		{"no sender", &ibmailv1.CreateSendRequest{Subject: "s", Text: "t", Recipients: one}, codes.InvalidArgument, "sender_id"},
		{"unknown sender", &ibmailv1.CreateSendRequest{SenderId: "zz", Subject: "s", Text: "t", Recipients: one}, codes.FailedPrecondition, "sender_id"},
		{"no subject", &ibmailv1.CreateSendRequest{SenderId: "s1", Text: "t", Recipients: one}, codes.InvalidArgument, "subject"},
		{"no body", &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: "s", Recipients: one}, codes.InvalidArgument, "html"},
		{"long subject", &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: strings.Repeat("s", 1001), Text: "t", Recipients: one}, codes.InvalidArgument, "subject"},
		{"no recipients", &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: "s", Text: "t"}, codes.InvalidArgument, "recipients"},
		{"bad address", &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: "s", Text: "t", Recipients: []*ibmailv1.RecipientInput{{Email: "a@example.com"}, {Email: "nope"}}}, codes.InvalidArgument, "recipients[1].email"},
		{"duplicate address", &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: "s", Text: "t", Recipients: []*ibmailv1.RecipientInput{{Email: "a@example.com"}, {Email: "A@example.com"}}}, codes.InvalidArgument, "recipients[1].email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.sends.CreateSend(context.Background(), tt.req)
			if status.Code(err) != tt.wantCode || !strings.Contains(status.Convert(err).Message(), tt.wantField) {
				t.Errorf("err = %v, want %v naming %s", err, tt.wantCode, tt.wantField)
			}
		})
	}
}

func TestCreateSendIdempotentAndSuppressing(t *testing.T) {
	env := newTestEnv(t)
	provisionSender(t, env, "https://c1.api.infobip.com")
	// A hard bounce and a soft bounce arrive for two addresses.
	b := body(report("m-h", "Hard@Example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"), report("m-s", "soft@example.com", 6011, "EC_SOFT_BOUNCE", 2, "BOUNCED"))
	if code, got := env.postWebhook(t, b); code != http.StatusOK {
		t.Fatalf("webhook: %d %v", code, got)
	}
	_, got := env.do(t, http.MethodGet, "/v1/suppressions", "", nil)
	supps, _ := got["suppressions"].([]any)
	if len(supps) != 1 || supps[0].(map[string]any)["email"] != "hard@example.com" || supps[0].(map[string]any)["eventName"] != "newsletter.hardbounce" {
		t.Fatalf("suppressions = %v, want hard@example.com by newsletter.hardbounce only", got)
	}

	var recipients []*ibmailv1.RecipientInput
	for i := range 2500 {
		recipients = append(recipients, &ibmailv1.RecipientInput{ProfileId: fmt.Sprintf("p-%d", i), Email: fmt.Sprintf("user%d@example.com", i)})
	}
	recipients = append(recipients, &ibmailv1.RecipientInput{ProfileId: "p-hard", Email: "hard@example.com"}, &ibmailv1.RecipientInput{ProfileId: "p-soft", Email: "soft@example.com"})
	req := &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: "Hello {{name}}", Html: "<p>Hi</p>", Recipients: recipients, IdempotencyKey: "campaign-7"}
	first, err := env.sends.CreateSend(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	s := first.GetSend()
	if s.GetRecipientCount() != 2502 || s.GetSuppressedCount() != 1 || s.GetPendingCount() != 2501 || s.GetState() != ibmailv1.SendState_SEND_STATE_DISPATCHING {
		t.Errorf("send = %v; want 2502 recipients, 1 suppressed, 2501 pending, dispatching", s)
	}
	again, err := env.sends.CreateSend(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if again.GetSend().GetId() != s.GetId() {
		t.Errorf("same idempotency key gave send %s, then %s", s.GetId(), again.GetSend().GetId())
	}
	list, err := env.sends.ListSendRecipients(context.Background(), &ibmailv1.ListSendRecipientsRequest{SendId: s.GetId(), State: ibmailv1.RecipientState_RECIPIENT_STATE_SUPPRESSED})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetRecipients()) != 1 || list.GetRecipients()[0].GetProfileId() != "p-hard" || !strings.Contains(list.GetRecipients()[0].GetReason(), "newsletter.hardbounce") {
		t.Errorf("suppressed recipients = %v, want p-hard with the causing event", list.GetRecipients())
	}

	code, _ := env.do(t, http.MethodDelete, "/v1/suppressions/hard@example.com", "", nil)
	if code != http.StatusOK {
		t.Errorf("lifting the suppression: %d", code)
	}
	code, _ = env.do(t, http.MethodDelete, "/v1/suppressions/hard@example.com", "", nil)
	if code != http.StatusNotFound {
		t.Errorf("lifting it again: %d, want 404", code)
	}
	req.IdempotencyKey = "campaign-8"
	third, err := env.sends.CreateSend(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if third.GetSend().GetSuppressedCount() != 0 {
		t.Errorf("after lifting: %d suppressed, want 0", third.GetSend().GetSuppressedCount())
	}
}
