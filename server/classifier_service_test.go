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

// TestClassifyReportREST covers every row of the seed's mapping tables, and
// the shapes seen in real traffic, through the running server's REST route.
func TestClassifyReportREST(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name      string
		errID     int
		errName   string
		groupID   int
		groupName string
		wantEvent string
		wantOut   string
	}{
		{"dropped spam detected", 6002, "EC_SPAM_DETECTED", 1, "DROPPED", "newsletter.spambounce", "REPORT_OUTCOME_EVENT"},
		{"dropped spam complaint", 6035, "EC_SUPPRESSED_SPAM_COMPLAINT", 1, "DROPPED", "newsletter.spambounce", "REPORT_OUTCOME_EVENT"},
		{"dropped suppressed bounce", 6034, "EC_SUPPRESSED_BOUNCE", 1, "DROPPED", "newsletter.spambounce", "REPORT_OUTCOME_EVENT"},
		{"dropped any other", 6003, "EC_UNSUBSCRIBED_EMAIL_ADDRESS", 1, "DROPPED", "newsletter.dropped", "REPORT_OUTCOME_EVENT"},
		{"handset errors any", 6034, "EC_SUPPRESSED_BOUNCE", 1, "HANDSET_ERRORS", "newsletter.hardbounce", "REPORT_OUTCOME_EVENT"},
		{"bounced ip blacklisted", 6017, "EC_SENDER_IP_BLACKLISTED", 2, "BOUNCED", "newsletter.spambounce", "REPORT_OUTCOME_EVENT"},
		{"bounced blocked as spam", 6099, "EC_BLOCKED_AS_SPAM", 2, "BOUNCED", "newsletter.spambounce", "REPORT_OUTCOME_EVENT"},
		{"bounced spam reverted", 6042, "EC_SPAM_REVERTED", 2, "BOUNCED", "newsletter.spambounce", "REPORT_OUTCOME_EVENT"},
		{"bounced inbox full", 6010, "EC_RECIPIENT_INBOX_FULL", 2, "BOUNCED", "newsletter.softbounce", "REPORT_OUTCOME_EVENT"},
		{"bounced soft bounce", 6011, "EC_SOFT_BOUNCE", 2, "BOUNCED", "newsletter.softbounce", "REPORT_OUTCOME_EVENT"},
		{"bounced any other", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED", "newsletter.hardbounce", "REPORT_OUTCOME_EVENT"},
		{"user errors any", 6006, "EC_INVALID_EMAIL_ADDRESS", 2, "USER_ERRORS", "newsletter.hardbounce", "REPORT_OUTCOME_EVENT"},
		{"operator errors any", 6013, "EC_INTERNAL_SYSTEM_ERROR", 3, "OPERATOR_ERRORS", "newsletter.hardbounce", "REPORT_OUTCOME_EVENT"},
		{"odd case and spacing", 6011, " ec_soft_bounce ", 2, " bounced ", "newsletter.softbounce", "REPORT_OUTCOME_EVENT"},
		{"no error", 0, "NO_ERROR", 0, "OK", "", "REPORT_OUTCOME_NO_ERROR"},
		{"unknown group", 6099, "EC_SOMETHING_NEW", 7, "MYSTERY_ERRORS", "", "REPORT_OUTCOME_UNCLASSIFIED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, got := env.do(t, http.MethodPost, "/v1/reports:classify", "application/json",
				[]byte(report("m-1", "ann@example.com", tt.errID, tt.errName, tt.groupID, tt.groupName)))
			if code != http.StatusOK {
				t.Fatalf("status = %d, body %v", code, got)
			}
			if got["eventName"] != tt.wantEvent {
				t.Errorf("eventName = %v, want %q", got["eventName"], tt.wantEvent)
			}
			if got["outcome"] != tt.wantOut {
				t.Errorf("outcome = %v, want %q", got["outcome"], tt.wantOut)
			}
			if got["classified"] != (tt.wantEvent != "") {
				t.Errorf("classified = %v, want %v", got["classified"], tt.wantEvent != "")
			}
			if rule, _ := got["rule"].(string); rule == "" {
				t.Errorf("rule is empty; every result must say which rule decided")
			}
		})
	}
}

// TestClassifyDocumentedDelivered sends Infobip's documented example, with
// fields this API does not model, and expects no event.
func TestClassifyDocumentedDelivered(t *testing.T) {
	env := newTestEnv(t)
	doc := `{"entityId":"promotional-traffic-entity","applicationId":"marketing-automation-application",
"campaignReferenceId":"campaign-reference-123","bulkId":"aszzmbhu62l7bxkhmyrj",
"price":{"pricePerMessage":0,"currency":"UNKNOWN"},
"status":{"id":5,"groupId":3,"groupName":"DELIVERED","name":"DELIVERED_TO_HANDSET","description":"Message delivered to handset"},
"error":{"id":0,"name":"NO_ERROR","description":"No Error","groupId":0,"groupName":"OK","permanent":false},
"messageId":"hgtesn8bcmc71pujp92d","doneAt":"2020-09-08T05:27:59.256+0000","smsCount":1,
"sentAt":"2020-09-08T05:27:57.628+0000","attemptCount":1,"timeToFirstAttempt":123,
"browserLink":"https://tracking.domain.com/render/content?id=9A31","sendingIp":"192.0.2.0",
"smtp":{"response":"250 2.0.0 OK"},"callbackData":"something you want back","to":"john.doe@gmail.com",
"someFieldInfobipAddsLater":{"x":1}}`
	code, got := env.do(t, http.MethodPost, "/v1/reports:classify", "application/json", []byte(doc))
	if code != http.StatusOK {
		t.Fatalf("status = %d, body %v", code, got)
	}
	if got["eventName"] != "" || got["outcome"] != "REPORT_OUTCOME_NO_ERROR" {
		t.Errorf("got %v, want no event and REPORT_OUTCOME_NO_ERROR", got)
	}
}

func TestClassifyGRPC(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	resp, err := env.classes.ClassifyReport(ctx, &ibmailv1.ClassifyReportRequest{Report: &ibmailv1.DeliveryReport{
		MessageId: "m-1", To: "a@example.com",
		Error: &ibmailv1.ReportError{Id: 6012, Name: "EC_HARD_BOUNCE", GroupId: 2, GroupName: "BOUNCED", Permanent: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.GetEventName(), "newsletter.hardbounce"; got != want {
		t.Errorf("event = %q, want %q", got, want)
	}
	_, err = env.classes.ClassifyReport(ctx, &ibmailv1.ClassifyReportRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "report") {
		t.Errorf("empty request: err = %v, want InvalidArgument naming report", err)
	}

	batch, err := env.classes.BatchClassifyReports(ctx, &ibmailv1.BatchClassifyReportsRequest{Reports: []*ibmailv1.DeliveryReport{
		{Error: &ibmailv1.ReportError{Id: 6011, Name: "EC_SOFT_BOUNCE", GroupId: 2, GroupName: "BOUNCED"}},
		{Error: &ibmailv1.ReportError{Id: 0, Name: "NO_ERROR", GroupId: 0, GroupName: "OK"}},
		{Error: &ibmailv1.ReportError{Id: 6002, Name: "EC_SPAM_DETECTED", GroupId: 1, GroupName: "DROPPED"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range batch.GetClassifications() {
		got = append(got, c.GetEventName())
	}
	want := []string{"newsletter.softbounce", "", "newsletter.spambounce"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("batch events = %q, want %q", got, want)
	}
}
