package sandbox

import (
	"fmt"
	"strings"
	"time"
)

// ExampleDeliveryReports is a delivery-report webhook body of n realistic
// reports, for benchmarks and load tests: Infobip's documented fields, a
// bounce mix in which three reports in four make an event, and message ids
// made of prefix, seq and the position, so that bodies with different seq
// never repeat a report.
func ExampleDeliveryReports(prefix string, seq, n int) []byte {
	errs := []string{
		`{"id":6012,"name":"EC_HARD_BOUNCE","description":"Hard bounce","groupId":2,"groupName":"BOUNCED","permanent":true}`,
		`{"id":0,"name":"NO_ERROR","description":"No Error","groupId":0,"groupName":"OK","permanent":false}`,
		`{"id":6011,"name":"EC_SOFT_BOUNCE","description":"Soft bounce","groupId":2,"groupName":"BOUNCED","permanent":false}`,
		`{"id":6034,"name":"EC_SUPPRESSED_BOUNCE","description":"Suppressed","groupId":1,"groupName":"HANDSET_ERRORS","permanent":true}`,
	}
	var sb strings.Builder
	sb.Grow(n * 900)
	sb.WriteString(`{"results":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"entityId":"promotional-traffic-entity","applicationId":"marketing-automation-application",`+
			`"campaignReferenceId":"campaign-reference-123","bulkId":"bulk-%d","price":{"pricePerMessage":0,"currency":"UNKNOWN"},`+
			`"status":{"id":4,"groupId":2,"groupName":"UNDELIVERABLE","name":"UNDELIVERABLE_REJECTED_OPERATOR","description":"Message rejected"},`+
			`"error":%s,"messageId":"%s-%d-%d","doneAt":"2024-05-01T10:%02d:%02d.256+0000","smsCount":1,`+
			`"sentAt":"2024-05-01T09:59:57.628+0000","attemptCount":1,"timeToFirstAttempt":123,"sendingIp":"192.0.2.0",`+
			`"smtp":{"response":"550 5.1.1 mailbox unavailable"},"callbackData":"{\"profileId\":\"p-%d\"}","to":"user%d@example.com"}`,
			seq, errs[i%len(errs)], prefix, seq, i, i%60, seq%60, (seq*n+i)%50000, i)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// ExampleTrackingReports is a tracking webhook body of n events, as a JSON
// array (Infobip posts one object per request; the webhook takes arrays
// too), for benchmarks and load tests: a mix of opens, clicks, complaints,
// late bounces and unsubscribes, in which two events in five make a
// suppressing event. Event and message ids are made of prefix, seq and the
// position, so bodies with different seq never repeat an event.
func ExampleTrackingReports(prefix string, seq, n int) []byte {
	kinds := []string{Opened, Clicked, Complained, LateBounce, Unsubscribed}
	sent := time.Date(2024, 5, 1, 9, 59, 57, 628e6, time.UTC).UnixMilli()
	events := make([]TrackingEvent, n)
	for i := range events {
		kind := kinds[i%len(kinds)]
		ev := TrackingEvent{
			NotificationType: kind, EventID: fmt.Sprintf("%s-%d-%d", prefix, seq, i), Domain: "example.com",
			Recipient: fmt.Sprintf("user%d@example.com", (seq*n+i)%50000), SendDateTime: sent,
			MessageID: fmt.Sprintf("%s-m-%d-%d", prefix, seq, i), BulkID: fmt.Sprintf("bulk-%d", seq),
			CallbackData: fmt.Sprintf(`{"profileId":"p-%d"}`, (seq*n+i)%50000), CampaignReferenceID: "campaign-reference-123",
			EntityID: "promotional-traffic-entity", ApplicationID: "marketing-automation-application",
		}
		switch kind {
		case Complained, LateBounce:
			ev.Sender = "news@example.com"
		default:
			ev.RecipientInfo, ev.GeoLocation = sandboxReader, sandboxPlace
		}
		if kind == Clicked {
			ev.URL = DefaultClickURL
		}
		events[i] = ev
	}
	return marshal(events)
}

// ExamplePlatformEvents is a platform-events webhook body of n events, as
// a JSON array, for benchmarks and load tests: bounce-rate warnings and
// blocks, alternately, of n domains of their own (d-<seq>-<i>.example.com),
// with event ids made of prefix, seq and the position.
func ExamplePlatformEvents(prefix string, seq, n int) []byte {
	created := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	events := make([]PlatformEvent, n)
	for i := range events {
		d := PlatformEventDetails{Type: HighBounceRateWarning, AccountKey: AccountKey,
			Domain: fmt.Sprintf("d-%d-%d.example.com", seq, i), BounceRate: 3.4, Scope: ScopeHourly, WarnThreshold: DefaultBounceWarnPercent}
		if i%2 == 1 {
			d.Type, d.WarnThreshold, d.BlockThreshold, d.BounceRate = HighBounceRateBlocked, 0, DefaultBounceBlockPercent, 5.6
		}
		events[i] = PlatformEvent{EventID: fmt.Sprintf("%s-%d-%d", prefix, seq, i), CreatedAt: created, EventDetails: d}
	}
	return marshal(events)
}
