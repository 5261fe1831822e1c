package server

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
)

// FuzzWebhookBody feeds arbitrary bodies through the webhook's decoder and
// the conversion of each report: nothing may panic, and every report either
// becomes a consistent stored report or is refused with a reason.
func FuzzWebhookBody(f *testing.F) {
	for _, seed := range []string{
		// Infobip's documented example (a delivered message).
		`{"results":[{"entityId":"promotional-traffic-entity","applicationId":"marketing-automation-application","campaignReferenceId":"campaign-reference-123","bulkId":"aszzmbhu62l7bxkhmyrj","price":{"pricePerMessage":0,"currency":"UNKNOWN"},"status":{"id":5,"groupId":3,"groupName":"DELIVERED","name":"DELIVERED_TO_HANDSET","description":"Message delivered to handset"},"error":{"id":0,"name":"NO_ERROR","description":"No Error","groupId":0,"groupName":"OK","permanent":false},"messageId":"hgtesn8bcmc71pujp92d","doneAt":"2020-09-08T05:27:59.256+0000","smsCount":1,"sentAt":"2020-09-08T05:27:57.628+0000","attemptCount":1,"timeToFirstAttempt":123,"browserLink":"https://tracking.domain.com/render/content?id=9A31","sendingIp":"192.0.2.0","smtp":{"response":"250 2.0.0 OK"},"callbackData":"something you want back","to":"john.doe@gmail.com"}]}`,
		// A suppression as seen in real traffic (2024).
		`{"results":[{"messageId":"m1","to":"a@b.com","doneAt":"2024-05-01T10:00:00.000-0300","status":{"id":4,"groupId":2,"groupName":"UNDELIVERABLE","name":"UNDELIVERABLE_REJECTED_OPERATOR"},"error":{"id":6034,"name":"EC_SUPPRESSED_BOUNCE","groupId":1,"groupName":"HANDSET_ERRORS","permanent":true},"callbackData":"{\"profileId\":\"p1\",\"ibmailSendId\":\"send-1\"}"}]}`,
		`{"results":[{"messageId":"","to":"","doneAt":"yesterday"}]}`,
		`{"results":"nope"}`,
		`{"results":[{"messageId":"x\u0000y","to":"a@b.com"}]}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	engine := classifier.Default()
	received := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ibmailv1.IngestDeliveryReportsRequest
		if err := gatewayMarshaler.NewDecoder(bytes.NewReader(body)).Decode(&req); err != nil {
			return // refused as malformed: a 400 with the body kept
		}
		for _, r := range req.GetResults() {
			rep, err := toStoreReport(engine, r, parseCallback(r), "", received, nil)
			if err != nil {
				if err.Error() == "" {
					t.Fatal("a refusal without a reason")
				}
				continue
			}
			if strings.TrimSpace(rep.Key.MessageID) == "" || rep.ProfileID == "" {
				t.Fatalf("stored report without message id or profile: %+v", rep)
			}
			if (rep.Outcome == store.OutcomeEvent) != (rep.EventName != "") || (rep.EventName != "") != (rep.Params != nil) {
				t.Fatalf("outcome %d, event %q, params %v disagree", rep.Outcome, rep.EventName, rep.Params)
			}
			if rep.EventTime.IsZero() || rep.Rule == "" {
				t.Fatalf("stored report without time or rule: %+v", rep)
			}
		}
	})
}
