package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
)

// TestReportAttributionStaysInItsConnection: a report authenticated by one
// connection's webhook secret is attributed only to that connection's
// sends, whether it names another connection's send by messageId or by
// callbackData; with the server-wide secret it is attributed to any send.
// Unattributed, it lands on the profile of its own address, leaves the
// other connection's recipient as it was and suppresses nothing. On the old code the report
// signed with B's secret landed on A's recipient's profile and marked A's
// recipient.
func TestReportAttributionStaysInItsConnection(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			// The sandbox posts no reports of its own during the test.
			_, url := newSandbox(t, sandbox.Options{ReportDelay: time.Hour})
			env := newTestEnv(t, append([]envOption{withAllowedBaseURL(url), withDispatcher(nil)}, engine.opts...)...)
			ctx := context.Background()
			secrets := map[string]string{"server-wide": testSecret}
			for _, c := range []string{"A", "B"} {
				resp, err := env.conns.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{
					Id: "conn-" + strings.ToLower(c), ApiKey: sandboxKey, BaseUrl: url}})
				if err != nil {
					t.Fatal(err)
				}
				secrets[c] = resp.GetWebhookSecret()
				if _, err := env.senders.CreateSender(ctx, &ibmailv1.CreateSenderRequest{Sender: &ibmailv1.Sender{
					Id: "sender-" + strings.ToLower(c), ConnectionId: "conn-" + strings.ToLower(c), FromAddress: "news@example.com"}}); err != nil {
					t.Fatal(err)
				}
			}
			var recipients []*ibmailv1.RecipientInput
			for i := range 4 {
				recipients = append(recipients, &ibmailv1.RecipientInput{ProfileId: fmt.Sprint("profile-a", i), Email: fmt.Sprintf("a%d@example.com", i)})
			}
			created, err := env.sends.CreateSend(ctx, &ibmailv1.CreateSendRequest{SenderId: "sender-a", Subject: "s", Text: "t", Recipients: recipients})
			if err != nil {
				t.Fatal(err)
			}
			// B has a send too, so that its secret is a live one with sends.
			if _, err := env.sends.CreateSend(ctx, &ibmailv1.CreateSendRequest{SenderId: "sender-b", Subject: "s", Text: "t",
				Recipients: []*ibmailv1.RecipientInput{{ProfileId: "profile-b", Email: "b@example.com"}}}); err != nil {
				t.Fatal(err)
			}
			sendA := waitSendDone(t, env, created.GetSend().GetId()).GetId()
			listed, err := env.sends.ListSendRecipients(ctx, &ibmailv1.ListSendRecipientsRequest{SendId: sendA})
			if err != nil || len(listed.GetRecipients()) != 4 {
				t.Fatalf("recipients of A's send: %v, %v", listed, err)
			}
			messageIDs := make([]string, 4)
			for i, r := range listed.GetRecipients() {
				if messageIDs[i] = r.GetMessageId(); messageIDs[i] == "" {
					t.Fatalf("recipient %d of A's send has no message id: %v", i, r)
				}
			}

			tests := []struct {
				name         string
				secret       string
				recipient    int  // of A's send, the report's address
				byCallback   bool // names A's send in callbackData, with an unknown messageId
				wantProfile  string
				wantAttached bool // A's recipient marked with the report's event
			}{
				{"B's secret, A's messageId", "B", 0, false, "a0@example.com", false},
				{"B's secret, A's send in callbackData", "B", 1, true, "a1@example.com", false},
				{"A's secret, A's messageId", "A", 2, false, "profile-a2", true},
				{"server-wide secret, A's send in callbackData", "server-wide", 3, true, "profile-a3", true},
			}
			for _, tt := range tests {
				messageID := messageIDs[tt.recipient]
				if tt.byCallback {
					messageID = "unknown-" + messageID
				}
				var rep map[string]any
				if err := json.Unmarshal([]byte(report(messageID, fmt.Sprintf("a%d@example.com", tt.recipient), 6012, "EC_HARD_BOUNCE", 2, "BOUNCED")), &rep); err != nil {
					t.Fatal(err)
				}
				if tt.byCallback {
					rep["callbackData"] = `{"ibmailSendId":"` + sendA + `"}`
				}
				code, got := env.do(t, http.MethodPost, server.WebhookPath, "application/json", []byte(body(toJSON(rep))), basicAuth("infobip", secrets[tt.secret]))
				if code != http.StatusOK {
					t.Fatalf("%s: webhook %d %v", tt.name, code, got)
				}
				reports, err := env.reports.ListDeliveryReports(ctx, &ibmailv1.ListDeliveryReportsRequest{})
				if err != nil {
					t.Fatal(err)
				}
				profile := ""
				for _, r := range reports.GetReports() {
					if r.GetReport().GetMessageId() == messageID {
						profile = r.GetProfileId()
					}
				}
				if profile != tt.wantProfile {
					t.Errorf("%s: the report landed on profile %q, want %q", tt.name, profile, tt.wantProfile)
				}
				rs, err := env.sends.ListSendRecipients(ctx, &ibmailv1.ListSendRecipientsRequest{SendId: sendA})
				if err != nil {
					t.Fatal(err)
				}
				// Suppressions are shared by all connections: only a report
				// attributed to its own connection's send may add one.
				_, sup := env.do(t, http.MethodGet, "/v1/suppressions?pageSize=1000", "", nil)
				if suppressed := strings.Contains(fmt.Sprint(sup), fmt.Sprintf("a%d@example.com", tt.recipient)); suppressed != tt.wantAttached {
					t.Errorf("%s: a%d@example.com suppressed %v, want %v", tt.name, tt.recipient, suppressed, tt.wantAttached)
				}
				// Every accepted recipient starts with its message.send;
				// only an attributed report replaces it.
				last := rs.GetRecipients()[tt.recipient].GetLastEvent()
				if attached := last != "" && last != "message.send"; attached != tt.wantAttached {
					t.Errorf("%s: A's recipient %d marked %v (last event %q), want %v", tt.name, tt.recipient, attached,
						rs.GetRecipients()[tt.recipient].GetLastEvent(), tt.wantAttached)
				}
			}
		})
	}
}
