package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/server"
)

// TestEdgesRequestsAreRefusedAtTheDoor: invalid UTF-8 and control
// characters in path and query parameters, invalid UTF-8 around a body, a
// control character in callbackData's ibmailSendId, wrong methods and
// unknown paths all get a google.rpc.Status with a reason and the field
// named, never a 5xx, and every read still works afterwards.
func TestEdgesRequestsAreRefusedAtTheDoor(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			h := newHostileEnv(t, engine.opts...)
			n := 0
			webhookBody := func(cb string) []byte {
				n++
				return []byte(`{"results":[{"messageId":"edge-` + strings.Repeat("x", n) + `","to":"e@example.com","doneAt":"2024-05-01T10:00:00.000+0000",` +
					`"status":{"groupName":"UNDELIVERABLE"},"error":{"id":6012,"name":"EC_HARD_BOUNCE","groupId":2,"groupName":"BOUNCED","permanent":true},` +
					`"callbackData":` + jsonStringRaw(cb) + `}]}`)
			}
			for _, c := range []struct {
				name, method, target string
				body                 []byte
				wantStatus           int
				wantReason, wantName string
			}{
				{"path invalid utf-8", "GET", "/v1/profiles/%FF%FE/events", nil, 400, "INVALID_ARGUMENT", "profile_id"},
				{"path nul", "GET", "/v1/profiles/x%00y/events", nil, 400, "INVALID_ARGUMENT", "profile_id"},
				{"send path nul", "GET", "/v1/sends/x%00y", nil, 400, "INVALID_ARGUMENT", "send_id"},
				{"suppression path nul", "DELETE", "/v1/suppressions/x%00y", nil, 400, "INVALID_ARGUMENT", "email"},
				{"query invalid utf-8", "GET", "/v1/senders?connectionId=%FF", nil, 400, "INVALID_ARGUMENT", "connectionId"},
				{"query nul", "GET", "/v1/senders?connectionId=x%00y", nil, 400, "INVALID_ARGUMENT", "connectionId"},
				{"page token invalid utf-8", "GET", "/v1/deliveryReports?pageToken=%FF", nil, 400, "INVALID_ARGUMENT", "pageToken"},
				{"webhook invalid utf-8 outside strings", "POST", server.WebhookPath, append([]byte("\xff"), webhookBody(`{"x":1}`)...), 400, "MALFORMED_BODY", ""},
				{"send invalid utf-8 outside strings", "POST", "/v1/sends", []byte("\xff{}"), 400, "MALFORMED_BODY", ""},
				{"webhook ibmailSendId nul", "POST", server.WebhookPath, webhookBody(`{"ibmailSendId":` + jsonStringRaw("x\x00y") + `}`), 200, "", ""},
				{"invalid utf-8 in a string field", "POST", "/v1/sends", []byte("{\"senderId\":\"hs\",\"subject\":\"x\xffy\"}"), 400, "MALFORMED_BODY", "subject"},
				{"wrong type in a nested field", "POST", "/v1/sends", []byte(`{"recipients":[{"email":"a@example.com"},{"email":5}]}`), 400, "MALFORMED_BODY", "email"},
				{"bad timestamp", "POST", "/v1/profiles:search", []byte(`{"eventNames":["newsletter.hardbounce"],"since":"yesterday"}`), 400, "MALFORMED_BODY", "since"},
				{"timestamp out of range", "POST", "/v1/profiles:search", []byte(`{"until":"10000-01-01T00:00:00Z"}`), 400, "MALFORMED_BODY", "until"},
				{"unknown field in a PATCH", "PATCH", "/v1/connections/hc", []byte(`{"displayName":"Edge","zzUnknown":[1],"rateLimit":5}`), 200, "", ""},
				{"nul in senderId", "POST", "/v1/sends", []byte(`{"senderId":"x\u0000y","subject":"s","text":"t","recipients":[{"email":"a@example.com"}]}`), 400, "INVALID_ARGUMENT", "senderId"},
				{"invalid utf-8 inside callbackData", "POST", "/v1/reports:classify", []byte("{\"report\":{\"callbackData\":\"{\\\"profileId\\\":\\\"x\xffy\\\"}\"}}"), 400, "MALFORMED_BODY", "profileId"},
				{"wrong method", "PUT", "/v1/sends", []byte(`{}`), 405, "METHOD_NOT_ALLOWED", ""},
				{"unknown path", "GET", "/v1/nothing-here", nil, 404, "NOT_FOUND", ""},
			} {
				resp, err := h.send(c.method, c.target, nil, c.body)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				st, reason, violations := h.parseStatus(resp)
				if resp.status != c.wantStatus || reason != c.wantReason {
					t.Errorf("%s: got %d %q %s, want %d %q", c.name, resp.status, reason, resp.excerpt(), c.wantStatus, c.wantReason)
				}
				if !utf8.Valid(resp.body) {
					t.Errorf("%s: the answer is not valid UTF-8: %q", c.name, resp.body)
				}
				if c.wantName != "" && !names(violations, c.wantName) {
					t.Errorf("%s: the BadRequest %q does not name %s", c.name, violations, c.wantName)
				}
				if c.wantStatus == 405 && !strings.Contains(resp.header.Get("Allow"), "POST") {
					t.Errorf("%s: Allow %q, want it to list POST", c.name, resp.header.Get("Allow"))
				}
				if c.wantStatus == 200 && c.target == server.WebhookPath {
					if rej, _ := resp.json()["rejected"].([]any); len(rej) != 1 {
						t.Errorf("%s: got %s, want the report refused and named", c.name, resp.excerpt())
					}
				}
				if c.wantStatus == 400 && strings.HasPrefix(c.target, server.WebhookPath) {
					kept := false
					for _, p := range h.newRejected(t) {
						if b, _ := base64.StdEncoding.DecodeString(p["body"].(string)); string(b) == string(c.body) {
							kept = true
						}
					}
					if !kept {
						t.Errorf("%s: the refused body was not kept as it arrived", c.name)
					}
				}
				_ = st
				h.readBack(t, c.name, nil)
			}
		})
	}
}

// TestEdgesOneCredentialOnly: the webhook, over REST and gRPC, and
// WatchEvents, a server stream, refuse a call with two authorization values
// even when one of them is valid, as unary bearer calls do.
func TestEdgesOneCredentialOnly(t *testing.T) {
	h := newHostileEnv(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("infobip:"+testSecret))
	for _, hdr := range [][]string{{basic, "Bearer wrong-token-0123456789"}, {"Bearer wrong-token-0123456789", basic}, {basic, basic}} {
		resp, err := h.send("POST", server.WebhookPath, http.Header{"Authorization": hdr}, []byte(`{"results":[]}`))
		if err != nil || resp.status != 401 {
			t.Errorf("REST webhook with Authorization %d values: %v %d %s, want 401", len(hdr), err, resp.status, resp.excerpt())
		}
		resp, err = h.send("POST", server.WebhookPath+"?token="+testSecret, http.Header{"Authorization": hdr[:1]}, []byte(`{"results":[]}`))
		if err != nil || resp.status != 401 {
			t.Errorf("REST webhook with Basic and token: %v %d %s, want 401", err, resp.status, resp.excerpt())
		}
		ctx := metadata.NewOutgoingContext(context.Background(), metadata.MD{"authorization": hdr})
		_, err = ibmailv1.NewDeliveryReportServiceClient(h.conn).IngestDeliveryReports(ctx, &ibmailv1.IngestDeliveryReportsRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("gRPC webhook with %d authorization values: %v, want Unauthenticated", len(hdr), err)
		}
	}
	bearer := "Bearer " + hostileAdminToken
	for _, vals := range [][]string{{bearer, "Bearer wrong-token-0123456789"}, {"garbage", bearer}, {bearer, bearer}} {
		ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(context.Background(), metadata.MD{"authorization": vals}))
		stream, err := ibmailv1.NewEventServiceClient(h.conn).WatchEvents(ctx, &ibmailv1.WatchEventsRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		cancel()
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("WatchEvents with authorization %q: %v, want Unauthenticated", vals, err)
		}
	}
}
