package infobip

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzDecodeError feeds the error decoder arbitrary answers: it must never
// panic, always keep the status, and produce a printable message; and the
// success decoders must never panic either.
func FuzzDecodeError(f *testing.F) {
	seeds := []struct {
		status int
		retry  string
		body   string
	}{
		{400, "", `{"requestError":{"serviceException":{"messageId":"BAD_REQUEST","text":"Bad request","validationErrors":{"to":["must not be empty"]}}}}`},
		{401, "", `{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}`},
		{403, "", `{"requestError":{"serviceException":{"messageId":"FORBIDDEN","text":"Forbidden"}}}`},
		{429, "3", `{"requestError":{"serviceException":{"messageId":"TOO_MANY_REQUESTS","text":"Too many requests"}}}`},
		{429, "Wed, 21 Oct 2015 07:28:00 GMT", `{"errorCode":"E429","description":"Too many requests sent.","action":"Check request rate limit specified in the API endpoint documentation resource.","violations":[],"resources":[{"name":"Throttling handling errors","url":"https://www.infobip.com/docs/essentials/integration-best-practices#throttling-handling-errors"}]}`},
		{400, "", `{"errorCode":"E400","description":"Request cannot be processed.","violations":[{"property":"to","violation":"invalid"}]}`},
		{500, "", `{"requestError":{"serviceException":{"messageId":"GENERAL_ERROR","text":"Something went wrong. Please contact support."}}}`},
		{502, "", "<html><body><h1>502 Bad Gateway</h1></body></html>"},
		{400, "", `{"requestError":{"policyException":{"messageId":"X","text":"y","validationErrors":{"a":"b"}}}}`},
		{200, "-1", `{"bulkId":"b","messages":[{"to":"a@b.c","messageId":"m","status":{"groupId":1,"groupName":"PENDING","id":26,"name":"PENDING_ACCEPTED"}}]}`},
		{200, "", `{"results":[{"bulkId":"aszzmbhu62l7bxkhmyrj","messageId":"hgtesn8bcmc71pujp92d","doneAt":"2020-09-08T05:27:59.256+0000","sentAt":"2020-09-08T05:27:57.628+0000","smsCount":1,"status":{"id":5,"groupId":3,"groupName":"DELIVERED","name":"DELIVERED_TO_HANDSET"},"error":{"id":0,"name":"NO_ERROR","groupId":0,"groupName":"OK","permanent":false},"to":"john.doe@gmail.com"}]}`},
		{503, "", "\xff\xfe\x00"},
	}
	for _, s := range seeds {
		f.Add(s.status, s.retry, []byte(s.body))
	}
	now := time.Date(2015, 10, 21, 7, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		e := (&Client{}).redactAPIError(decodeAPIError(status, http.Header{"Retry-After": {retryAfter}}, body, now))
		if e == nil || e.StatusCode != status {
			t.Fatalf("decodeAPIError kept status %v, want %d", e, status)
		}
		if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
			t.Fatalf("RetryAfter = %v", e.RetryAfter)
		}
		msg := e.Error()
		if !strings.HasPrefix(msg, "infobip: HTTP ") {
			t.Fatalf("Error() = %q", msg)
		}
		if e.MessageID == "" && !utf8.ValidString(e.Text) {
			t.Fatalf("excerpt of a foreign body is not UTF-8: %q", e.Text)
		}
		for _, field := range []string{e.Text, e.MessageID, e.Action} {
			if len(field) > MaxUpstreamText || !utf8.ValidString(field) || strings.ContainsFunc(field, unicode.IsControl) {
				t.Fatalf("excerpt %q is not bounded and sanitised", field)
			}
		}
		var sr SendResponse
		_ = json.Unmarshal(body, &sr)
		var dr DeliveryReports
		_ = json.Unmarshal(body, &dr)
		var lr LogsResponse
		_ = json.Unmarshal(body, &lr)
	})
}
