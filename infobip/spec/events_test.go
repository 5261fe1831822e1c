package spec_test

import (
	"encoding/json"
	"testing"

	"github.com/ibmail/ibmail/infobip/spec"
)

// webhookExamples returns the examples the description gives for a
// webhook's JSON body, by name.
func webhookExamples(t *testing.T, webhook string) map[string]json.RawMessage {
	t.Helper()
	var doc struct {
		Webhooks map[string]struct {
			Post struct {
				RequestBody struct {
					Content map[string]struct {
						Examples map[string]struct {
							Value json.RawMessage `json:"value"`
						} `json:"examples"`
					} `json:"content"`
				} `json:"requestBody"`
			} `json:"post"`
		} `json:"webhooks"`
	}
	if err := json.Unmarshal(spec.JSON(), &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for name, ex := range doc.Webhooks[webhook].Post.RequestBody.Content["application/json"].Examples {
		out[name] = ex.Value
	}
	if len(out) == 0 {
		t.Fatalf("no example of %s in the description", webhook)
	}
	return out
}

// Infobip's own examples are the reference the sandbox's events are held
// to: all five tracking examples (string messageIds included) and both
// platform-event examples must pass.
func TestEventExamplesPass(t *testing.T) {
	v := spec.MustLoad()
	tracking := webhookExamples(t, spec.WebhookTrackingReports)
	if len(tracking) != 5 {
		t.Errorf("%d tracking examples, want 5", len(tracking))
	}
	for name, body := range tracking {
		if err := v.ValidateTrackingReport(body); err != nil {
			t.Errorf("tracking example %q: %v", name, err)
		}
	}
	platform := webhookExamples(t, spec.WebhookPlatformEvents)
	if len(platform) != 2 {
		t.Errorf("%d platform-event examples, want 2", len(platform))
	}
	for name, body := range platform {
		if err := v.ValidatePlatformEvent(body); err != nil {
			t.Errorf("platform-event example %q: %v", name, err)
		}
	}
}

func TestValidateTrackingReport(t *testing.T) {
	tests := []struct {
		name, body, wantErr string
	}{
		{"open with a string messageId", `{"notificationType":"OPENED","eventId":"e","messageId":"m1","sendDateTime":1704106800000,
			"recipientInfo":{"deviceType":"Phone"},"geoLocation":{"city":"Zagreb"}}`, ""},
		{"click with a number messageId", `{"notificationType":"CLICKED","eventId":"e","messageId":12,"url":"https://example.com/"}`, ""},
		{"empty messageId", `{"notificationType":"OPENED","messageId":""}`, "$.messageId: empty string"},
		{"unknown type", `{"notificationType":"BOUNCED"}`, `"BOUNCED" is not one of`},
		{"no type", `{"eventId":"e"}`, "notificationType"},
		{"type not a string", `{"notificationType":3}`, "$.notificationType"},
		{"sendDateTime as text", `{"notificationType":"OPENED","sendDateTime":"2024-01-01"}`, "$.sendDateTime"},
		{"geoLocation not an object", `{"notificationType":"OPENED","geoLocation":"Zagreb"}`, "$.geoLocation"},
		{"an array of events", `[{"notificationType":"OPENED"}]`, "want object"},
		{"not JSON", `{"notificationType":`, "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, spec.MustLoad().ValidateTrackingReport([]byte(tt.body)), tt.wantErr)
		})
	}
}

func TestValidatePlatformEvent(t *testing.T) {
	const id = `"eventId":"550e8400-e29b-41d4-a716-446655440000","createdAt":1767308400000`
	tests := []struct {
		name, body, wantErr string
	}{
		{"warning", `{` + id + `,"eventDetails":{"type":"HIGH_BOUNCE_RATE_WARNING","accountKey":"K","domain":"example.com",
			"warnThreshold":3.0,"bounceRate":4.6,"scope":"HOURLY"}}`, ""},
		{"block", `{` + id + `,"eventDetails":{"type":"HIGH_BOUNCE_RATE_BLOCKED","accountKey":"K","domain":"example.com",
			"blockThreshold":5.0,"bounceRate":6.6,"scope":"DAILY"}}`, ""},
		{"block with the warning's threshold", `{` + id + `,"eventDetails":{"type":"HIGH_BOUNCE_RATE_BLOCKED","accountKey":"K","domain":"example.com",
			"warnThreshold":5.0,"bounceRate":6.6,"scope":"HOURLY"}}`, "blockThreshold"},
		{"warning without details", `{` + id + `,"eventDetails":{"type":"HIGH_BOUNCE_RATE_WARNING"}}`, "domain"},
		{"bad scope", `{` + id + `,"eventDetails":{"type":"HIGH_BOUNCE_RATE_WARNING","accountKey":"K","domain":"d",
			"warnThreshold":3,"bounceRate":4,"scope":"WEEKLY"}}`, "$.scope"},
		{"unknown type", `{` + id + `,"eventDetails":{"type":"DOMAIN_DELETED"}}`, "$.eventDetails.type"},
		{"eventId not a UUID", `{"eventId":"e-1","createdAt":1,"eventDetails":{"type":"HIGH_BOUNCE_RATE_WARNING","accountKey":"K",
			"domain":"d","warnThreshold":3,"bounceRate":4,"scope":"HOURLY"}}`, "not a UUID"},
		{"createdAt not an integer", `{"eventId":"550e8400-e29b-41d4-a716-446655440000","createdAt":1.5,"eventDetails":{"type":"HIGH_BOUNCE_RATE_WARNING"}}`, "$.createdAt"},
		{"no eventDetails", `{` + id + `}`, "eventDetails"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, spec.MustLoad().ValidatePlatformEvent([]byte(tt.body)), tt.wantErr)
		})
	}
}
