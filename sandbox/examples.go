package sandbox

import (
	"fmt"
	"strings"
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
