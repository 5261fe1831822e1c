package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// Every field of a send, sender or connection that reaches a mail header
// or a header to Infobip refuses control characters, CR and LF above all,
// with an error naming the field. On the old code, a send's subject (and
// the placeholders it names) took CR/LF, which starts a header of the
// caller's choosing once Infobip builds the mail.
func TestHeaderFieldsRefuseControlCharacters(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	provisionSender(t, env, "https://c1.api.infobip.com")
	send := func(adjust func(*ibmailv1.CreateSendRequest)) *ibmailv1.CreateSendRequest {
		r := &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: "Hello {{name}}", Text: "t",
			Recipients: []*ibmailv1.RecipientInput{{Email: "a@example.com", ProfileId: "ann"}}}
		adjust(r)
		return r
	}
	sends := []struct {
		name, wantField string
		req             *ibmailv1.CreateSendRequest
	}{
		{"subject CRLF", "subject", send(func(r *ibmailv1.CreateSendRequest) { r.Subject = "Hi\r\nBcc: all@example.com" })},
		{"subject LF", "subject", send(func(r *ibmailv1.CreateSendRequest) { r.Subject = "Hi\nthere" })},
		{"subject CR", "subject", send(func(r *ibmailv1.CreateSendRequest) { r.Subject = "Hi\rthere" })},
		{"subject NEL", "subject", send(func(r *ibmailv1.CreateSendRequest) { r.Subject = "Hi\u0085there" })},
		{"subject line separator", "subject", send(func(r *ibmailv1.CreateSendRequest) { r.Subject = "Hi\u2028there" })},
		{"subject TAB", "subject", send(func(r *ibmailv1.CreateSendRequest) { r.Subject = "Hi\tthere" })},
		{"campaign id", "campaign_id", send(func(r *ibmailv1.CreateSendRequest) { r.CampaignId = "spring\r\nX: y" })},
		{"recipient address", "recipients[0].email", send(func(r *ibmailv1.CreateSendRequest) { r.Recipients[0].Email = "a@example.com\r\nBcc: b@example.com" })},
		{"recipient address LF inside", "recipients[0].email", send(func(r *ibmailv1.CreateSendRequest) { r.Recipients[0].Email = "\"a\nb\"@example.com" })},
		{"recipient profile", "recipients[0].profile_id", send(func(r *ibmailv1.CreateSendRequest) { r.Recipients[0].ProfileId = "ann\r\n" + "x" })},
		{"placeholder in subject", "recipients[0].placeholders", send(func(r *ibmailv1.CreateSendRequest) {
			r.Recipients[0].Placeholders = map[string]string{"name": "Ann\r\nBcc: all@example.com"}
		})},
		{"default placeholder in subject", "default_placeholders", send(func(r *ibmailv1.CreateSendRequest) {
			r.DefaultPlaceholders = map[string]string{"name": "friend\n"}
		})},
		{"idempotency key", "idempotency_key", send(func(r *ibmailv1.CreateSendRequest) { r.IdempotencyKey = "k\r\n1" })},
	}
	for _, tt := range sends {
		t.Run("send/"+tt.name, func(t *testing.T) {
			_, err := env.sends.CreateSend(ctx, tt.req)
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tt.wantField+": ") {
				t.Errorf("err = %v, want InvalidArgument naming %s", err, tt.wantField)
			}
		})
	}
	// A placeholder the subject does not name goes into the body only,
	// where line breaks belong.
	if _, err := env.sends.CreateSend(ctx, send(func(r *ibmailv1.CreateSendRequest) {
		r.Recipients[0].Placeholders = map[string]string{"name": "Ann", "address": "1 Main St\r\nSpringfield"}
	})); err != nil {
		t.Errorf("a multi-line placeholder outside the subject: %v, want it accepted", err)
	}

	senders := []struct {
		name, wantField string
		sender          *ibmailv1.Sender
	}{
		{"from name CRLF", "sender.from_name", &ibmailv1.Sender{ConnectionId: "c1", FromAddress: "a@example.com", FromName: "News\r\nBcc: x@example.com"}},
		{"from name NEL", "sender.from_name", &ibmailv1.Sender{ConnectionId: "c1", FromAddress: "a@example.com", FromName: "News\u0085"}},
		{"from address", "sender.from_address", &ibmailv1.Sender{ConnectionId: "c1", FromAddress: "a@example.com\r\nBcc: x@example.com"}},
		{"reply-to", "sender.reply_to", &ibmailv1.Sender{ConnectionId: "c1", FromAddress: "a@example.com", ReplyTo: "r@example.com\nBcc: x@example.com"}},
	}
	for _, tt := range senders {
		t.Run("sender/"+tt.name, func(t *testing.T) {
			_, err := env.senders.CreateSender(ctx, &ibmailv1.CreateSenderRequest{Sender: tt.sender})
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tt.wantField+": ") {
				t.Errorf("err = %v, want InvalidArgument naming %s", err, tt.wantField)
			}
		})
	}

	connections := []struct {
		name, wantField string
		conn            *ibmailv1.Connection
	}{
		{"display name", "connection.display_name", &ibmailv1.Connection{DisplayName: "Main\r\nX: y", ApiKey: testAPIKey, BaseUrl: "https://c2.api.infobip.com"}},
		{"application id", "connection.application_id", &ibmailv1.Connection{ApplicationId: "app\n1", ApiKey: testAPIKey, BaseUrl: "https://c2.api.infobip.com"}},
		{"entity id", "connection.entity_id", &ibmailv1.Connection{EntityId: "ent\r1", ApiKey: testAPIKey, BaseUrl: "https://c2.api.infobip.com"}},
		{"api key", "api_key", &ibmailv1.Connection{ApiKey: testAPIKey + "\r\nX: y", BaseUrl: "https://c2.api.infobip.com"}},
	}
	for _, tt := range connections {
		t.Run("connection/"+tt.name, func(t *testing.T) {
			_, err := env.conns.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: tt.conn})
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tt.wantField+": ") {
				t.Errorf("err = %v, want InvalidArgument naming %s", err, tt.wantField)
			}
		})
	}

	// Over REST, the same refusal is a 400 naming the field.
	code, got := env.do(t, http.MethodPost, "/v1/sends", "application/json",
		[]byte(`{"senderId": "s1", "subject": "Hi\r\nBcc: all@example.com", "text": "t", "recipients": [{"email": "a@example.com"}]}`))
	if msg, _ := got["message"].(string); code != http.StatusBadRequest || !strings.HasPrefix(msg, "subject: ") {
		t.Errorf("POST /v1/sends with CRLF in subject = %d %v, want 400 naming subject", code, got)
	}
}
