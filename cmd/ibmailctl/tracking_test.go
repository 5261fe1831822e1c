package main

import (
	"encoding/json"
	"testing"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// complainedJSON is Infobip's example of a complaint (its OpenAPI
// description's "Complained reports").
const complainedJSON = `{"notificationType": "COMPLAINED", "eventId": "8d2f8781-91fc-4473-9b0a-b12b51fafbe6",
  "domain": "some-domain.com", "recipient": "john.doe@some-domain.com", "sender": "noreply@some-domain.com",
  "sendDateTime": 1704106800000, "messageId": "14b734recsf69n8zkao5", "bulkId": "ikzzmbhu6223bxkhmyrj",
  "callbackData": "Callback data", "entityId": "promotional-traffic-entity",
  "applicationId": "marketing-automation-application", "campaignReferenceId": "campaign-reference-123"}`

// lateBounceVariantJSON is a late bounce in the shapes Infobip also sends:
// messageId as a number, geoLocationInfo, a field added later.
const lateBounceVariantJSON = `{"notificationType": "LATE_BOUNCE", "eventId": "e-late-1", "recipient": "ann@example.com",
  "messageId": 12345, "geoLocationInfo": {"city": "Oslo"}, "someFieldInfobipAddedLater": true}`

const clickedJSON = `{"notificationType": "CLICKED", "eventId": "e-click-1", "recipient": "bob@example.com", "url": "https://example.com/spring"}`

func TestClassifyTracking(t *testing.T) {
	srv := startServer(t)
	file := writeFile(t, "complaint.json", complainedJSON)
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  []string
	}{
		{"a complaint from a file", "", []string{"classify", file}, exitOK,
			[]string{"EVENT_ID", "SUPPRESSION", "8d2f8781-91fc-4473-9b0a-b12b51fafbe6  COMPLAINED  newsletter.spambounce  EVENT    complaint", "tracking rule"}, nil},
		{"Infobip's variants", lateBounceVariantJSON, []string{"classify"}, exitOK,
			[]string{"e-late-1  LATE_BOUNCE  newsletter.hardbounce  EVENT    \"late bounce\""}, nil},
		{"json of one", complainedJSON, []string{"classify", "--output", "json"}, exitOK,
			[]string{`"eventName": "newsletter.spambounce"`, `"suppressionReason": "complaint"`, `"outcome": "REPORT_OUTCOME_EVENT"`}, nil},
		{"an array, as a backlog", "[" + clickedJSON + "," + lateBounceVariantJSON + `,{"notificationType": "FORWARDED", "eventId": "e-fw", "recipient": "cy@example.com"}]`,
			[]string{"classify"}, exitOK,
			[]string{"e-click-1  CLICKED      newsletter.click", "e-late-1   LATE_BOUNCE  newsletter.hardbounce", "e-fw       FORWARDED    -                      UNCLASSIFIED"}, nil},
		{"json of an array", "[" + clickedJSON + "," + complainedJSON + "]", []string{"classify", "--output", "json"}, exitOK,
			[]string{`"classifications"`, `"eventName": "newsletter.click"`, `"eventName": "newsletter.spambounce"`}, nil},
		{"an array of delivery reports", "[" + hardBounceJSON + "," + deliveredJSON + "]", []string{"classify"}, exitOK,
			[]string{"MESSAGE_ID", "m-1", "newsletter.hardbounce", "m-2", "NO_ERROR"}, nil},
		{"no notification type: the server names the field", `{"eventId": "e-1", "recipient": "ann@example.com"}`, []string{"classify"}, exitServer,
			nil, []string{"InvalidArgument", "notificationType"}},
		{"a bad item of an array is named", "[" + clickedJSON + `,{"eventId": "e-2", "recipient": "ann@example.com"}]`, []string{"classify"}, exitServer,
			nil, []string{"InvalidArgument", "item 1:", "notificationType"}},
		{"mixed kinds", "[" + clickedJSON + "," + hardBounceJSON + "]", []string{"classify"}, exitUsage,
			nil, []string{"item 1 is a delivery report and item 0 a tracking report"}},
		{"empty array", "[]", []string{"classify"}, exitUsage, nil, []string{"no reports"}},
		{"array of numbers", "[1]", []string{"classify"}, exitUsage, nil, []string{"item 0: not a JSON object"}},
		{"wrong type", `{"notificationType": "OPENED", "eventId": 7}`, []string{"classify"}, exitUsage, nil, []string{"stdin: tracking report:", "eventId"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, ctl(t, srv.addr, tt.stdin, tt.args...), tt.wantCode, tt.wantOut, tt.wantErr)
		})
	}
}

// TestTracking posts tracking reports to the tracking webhook and reads
// them back as stored reports and as the profiles' events.
func TestTracking(t *testing.T) {
	srv := startServer(t)
	srv.ingestTracking(t,
		&ibmailv1.TrackingReport{NotificationType: "COMPLAINED", EventId: "e-1", Recipient: "ann@example.com", MessageId: "m-1",
			Sender: "news@example.com", CallbackData: `{"profileId": "ann"}`},
		&ibmailv1.TrackingReport{NotificationType: "CLICKED", EventId: "e-2", Recipient: "bob@example.com", MessageId: "m-2",
			Url: "https://example.com/spring sale", CallbackData: `{"profileId": "bob"}`},
		&ibmailv1.TrackingReport{NotificationType: "OPENED", EventId: "e-3", Recipient: "bob@example.com", MessageId: "m-2",
			RecipientInfo: &ibmailv1.TrackingRecipientInfo{DeviceType: "Phone", Os: "iOS 12"}, CallbackData: `{"profileId": "bob"}`},
	)
	// Stored after the others, so newest; no rule covers it.
	srv.ingestTracking(t, &ibmailv1.TrackingReport{NotificationType: "FORWARDED", EventId: "e-4", Recipient: "cy@example.com"})
	runCases(t, srv, []ctlCase{
		{name: "all, newest first", args: []string{"tracking"}, wantCode: exitOK,
			wantOut: []string{"RECEIVED", "TYPE", "PROFILE_ID", "FORWARDED   -", "OPENED      newsletter.open", "CLICKED     newsletter.click", "COMPLAINED  newsletter.spambounce  ann"}, inOrder: true},
		{name: "unclassified only", args: []string{"tracking", "--outcome", "unclassified"}, wantCode: exitOK,
			wantOut: []string{"FORWARDED  -      cy@example.com  cy@example.com  -           e-4\n"}, notOut: []string{"COMPLAINED"}},
		{name: "events only", args: []string{"tracking", "--outcome", "EVENT"}, wantCode: exitOK,
			wantOut: []string{"COMPLAINED", "CLICKED", "OPENED"}, notOut: []string{"FORWARDED"}},
		{name: "a limit keeps the newest", args: []string{"tracking", "--limit", "1"}, wantCode: exitOK,
			wantOut: []string{"FORWARDED"}, notOut: []string{"OPENED", "COMPLAINED"}},
		{name: "json", args: []string{"tracking", "--output", "json", "--outcome", "event"}, wantCode: exitOK,
			wantOut: []string{`"reports"`, `"notificationType": "COMPLAINED"`, `"eventName": "newsletter.spambounce"`, `"profileId": "ann"`}},
		{name: "bad outcome", args: []string{"tracking", "--outcome", "bounced"}, wantCode: exitUsage, wantErr: []string{"--outcome must be event, no-error or unclassified"}},
		{name: "negative limit", args: []string{"tracking", "--limit", "-1"}, wantCode: exitUsage, wantErr: []string{"negative"}},
		{name: "stray argument", args: []string{"tracking", "ann"}, wantCode: exitUsage, wantErr: []string{"no arguments"}},

		// The new events in the activity list, each with its telling param;
		// a URL with a space is quoted so that the columns hold.
		{name: "a complaint's event", args: []string{"events", "ann"}, wantCode: exitOK,
			wantOut: []string{"newsletter.spambounce  ann@example.com  m-1         COMPLAINED\n"}},
		{name: "an open's and a click's events", args: []string{"events", "bob"}, wantCode: exitOK,
			wantOut: []string{"newsletter.open   bob@example.com  m-2         OPENED\n", "newsletter.click  bob@example.com  m-2         \"https://example.com/spring sale\"\n"}},
		{name: "the event filter takes the new names", args: []string{"events", "bob", "--event", "newsletter.click"}, wantCode: exitOK,
			wantOut: []string{"newsletter.click"}, notOut: []string{"newsletter.open"}},
		{name: "segment by a new event", args: []string{"segment", "--event", "newsletter.open", "--event", "newsletter.spambounce"}, wantCode: exitOK,
			wantOut: []string{"ann,ann@example.com,1,", "bob,bob@example.com,1,"}},
	})

	// The open's device is in the event's params, for --output json.
	got := ctl(t, srv.addr, "", "events", "bob", "--event", "newsletter.open", "--output", "json")
	var body struct {
		Events []struct {
			Params map[string]string `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(got.stdout), &body); err != nil || len(body.Events) != 1 ||
		body.Events[0].Params["deviceType"] != "Phone" || body.Events[0].Params["notificationType"] != "OPENED" {
		t.Errorf("events --output json = %s (err %v)", got.stdout, err)
	}
}

func TestCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "-"},
		{"ann@example.com", "ann@example.com"},
		{"late bounce", `"late bounce"`},
		{"a\tb", `"a\tb"`},
		{"\x1b[31mred", `"\x1b[31mred"`},
		{"naïve", "naïve"},
	}
	for _, tt := range tests {
		if got := cell(tt.in); got != tt.want {
			t.Errorf("cell(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
