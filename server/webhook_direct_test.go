package server_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
)

// TestWebhookCallsAsTheGateway checks that the webhooks' direct call
// answers as the gateway's own route does: the same requests go to two
// servers, to one as they are and to the other with a Grpc-Timeout header,
// which makes the call take its course through the gateway's routing.
func TestWebhookCallsAsTheGateway(t *testing.T) {
	direct, routed := newTestEnv(t), newTestEnv(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("infobip:"+testSecret))
	cases := []struct {
		name, path, query, auth, contentType string
		body                                 []byte
	}{
		{"one report", server.WebhookPath, "", basic, "application/json", sandbox.ExampleDeliveryReports("m", 0, 1)},
		{"the same again", server.WebhookPath, "", basic, "application/json", sandbox.ExampleDeliveryReports("m", 0, 1)},
		{"token", server.WebhookPath, "?token=" + testSecret, "", "", sandbox.ExampleDeliveryReports("m", 1, 3)},
		{"refused reports", server.WebhookPath, "", basic, "application/json", []byte(body(
			report("m-ok", "ok@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"),
			report("", "bad@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"),
			strings.Replace(report("m-nul", "n@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"), "550 5.1.1", `550\u0000`, 1),
		))},
		{"undecodable report", server.WebhookPath, "", basic, "application/json", []byte(`{"results":[{"messageId":5}]}`)},
		{"not JSON", server.WebhookPath, "", basic, "application/json", []byte("{\n  \"results\": [tru]\n}")},
		{"bad UTF-8", server.WebhookPath, "", basic, "application/json", []byte("{\"results\":[{\"messageId\":\"a\xffb\"}]}")},
		{"empty", server.WebhookPath, "", basic, "application/json", nil},
		{"no reports", server.WebhookPath, "", basic, "application/json", []byte(`{"results":[]}`)},
		{"control character in the query", server.WebhookPath, "?token=" + testSecret + "&x=%01", "", "", sandbox.ExampleDeliveryReports("m", 2, 1)},
		{"tracking", server.TrackingWebhookPath, "", basic, "application/json", sandbox.ExampleTrackingReports("t", 0, 2)},
		{"tracking, not JSON", server.TrackingWebhookPath, "", basic, "application/json", []byte(`[{"eventId":}]`)},
		{"platform events", server.PlatformEventsWebhookPath, "", basic, "application/json", sandbox.ExamplePlatformEvents("p", 0, 2)},
		{"platform events, not JSON", server.PlatformEventsWebhookPath, "", basic, "application/json", []byte(`{`)},
	}
	for _, c := range cases {
		post := func(env *testEnv, header ...string) (int, http.Header, string) {
			t.Helper()
			req, err := http.NewRequest(http.MethodPost, env.rest.URL+c.path+c.query, bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			resp.Header.Del("Date")
			return resp.StatusCode, resp.Header, string(b)
		}
		code, header, answer := post(direct)
		wantCode, wantHeader, wantAnswer := post(routed, "Grpc-Timeout", "30S")
		if code != wantCode || answer != wantAnswer {
			t.Errorf("%s: answered %d %s, the gateway's route %d %s", c.name, code, answer, wantCode, wantAnswer)
		}
		for k := range wantHeader {
			if got, want := header.Values(k), wantHeader.Values(k); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s: header %s = %q, the gateway's route %q", c.name, k, got, want)
			}
		}
		for k := range header {
			if len(wantHeader.Values(k)) == 0 {
				t.Errorf("%s: header %s = %q, which the gateway's route does not set", c.name, k, header.Values(k))
			}
		}
	}
	_, directKept := direct.do(t, http.MethodGet, "/v1/rejectedPayloads?pageSize=100", "", nil)
	_, routedKept := routed.do(t, http.MethodGet, "/v1/rejectedPayloads?pageSize=100", "", nil)
	if d, r := len(directKept["payloads"].([]any)), len(routedKept["payloads"].([]any)); d != r || d == 0 {
		t.Errorf("%d rejected payloads kept, %d through the gateway's route", d, r)
	}
}
