package server_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// restErrorInfo digs the ErrorInfo reason and metadata out of a gateway
// error body.
func restErrorInfo(body map[string]any) (string, map[string]any) {
	details, _ := body["details"].([]any)
	for _, d := range details {
		if m, ok := d.(map[string]any); ok && m["reason"] != nil {
			md, _ := m["metadata"].(map[string]any)
			reason, _ := m["reason"].(string)
			return reason, md
		}
	}
	return "", nil
}

// grpcErrorInfo returns the ErrorInfo of a status error, or nil.
func grpcErrorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// postSend posts a send as JSON text and returns the status, the send id
// of a 200, or the ErrorInfo reason and the send its metadata names.
func postSend(t *testing.T, env *testEnv, jsonBody string) (code int, sendID, reason, named string) {
	t.Helper()
	code, got := env.do(t, http.MethodPost, "/v1/sends", "application/json", []byte(jsonBody))
	if code == http.StatusOK {
		s, _ := got["send"].(map[string]any)
		id, _ := s["id"].(string)
		return code, id, "", ""
	}
	reason, md := restErrorInfo(got)
	named, _ = md["send"].(string)
	return code, "", reason, named
}

// TestIdempotencyKeyReuse: a key retried with the same request gets the
// same send, however the JSON is laid out and over either transport; a
// different request with the key is refused with 409 / ALREADY_EXISTS and
// IDEMPOTENCY_KEY_REUSED naming the send; another sender account's key of
// the same text is its own; a send stored before request digests were
// kept answers every retry with itself. On the old code the different
// request got the old send with 200 and the second account's send was the
// first account's.
func TestIdempotencyKeyReuse(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			env := newTestEnv(t, engine.opts...)
			provisionSender(t, env, "https://c1.api.infobip.com")
			ctx := context.Background()
			if _, err := env.senders.CreateSender(ctx, &ibmailv1.CreateSenderRequest{Sender: &ibmailv1.Sender{
				Id: "s2", ConnectionId: "c1", FromAddress: "other@example.com"}}); err != nil {
				t.Fatal(err)
			}
			const (
				requestA          = `{"senderId":"s1","idempotencyKey":"k1","subject":"Hello","text":"t","recipients":[{"email":"a@example.com","profileId":"pa","placeholders":{"x":"1","y":"2"}},{"email":"b@example.com"}]}`
				requestAReordered = `{"recipients":[{"placeholders":{"y":"2","x":"1"},"profileId":"pa","email":"a@example.com"},{"email":"b@example.com"}],"text":"t","subject":"Hello","idempotencyKey":"k1","senderId":"s1"}`
			)
			code, first, reason, _ := postSend(t, env, requestA)
			if code != http.StatusOK || first == "" {
				t.Fatalf("first send: %d %s", code, reason)
			}
			tests := []struct {
				name       string
				body       string
				wantCode   int
				wantReused bool   // 409 IDEMPOTENCY_KEY_REUSED naming first
				wantSame   bool   // 200 with first; else 200 with a new send
				wantNot    string // for a new send: an id it must not be
			}{
				{"same request", requestA, http.StatusOK, false, true, ""},
				{"same request, fields and map entries reordered", requestAReordered, http.StatusOK, false, true, ""},
				{"other subject", `{"senderId":"s1","idempotencyKey":"k1","subject":"Other","text":"t","recipients":[{"email":"a@example.com","profileId":"pa","placeholders":{"x":"1","y":"2"}},{"email":"b@example.com"}]}`,
					http.StatusConflict, true, false, ""},
				{"recipients in another order", `{"senderId":"s1","idempotencyKey":"k1","subject":"Hello","text":"t","recipients":[{"email":"b@example.com"},{"email":"a@example.com","profileId":"pa","placeholders":{"x":"1","y":"2"}}]}`,
					http.StatusConflict, true, false, ""},
				{"other placeholder value", `{"senderId":"s1","idempotencyKey":"k1","subject":"Hello","text":"t","recipients":[{"email":"a@example.com","profileId":"pa","placeholders":{"x":"1","y":"3"}},{"email":"b@example.com"}]}`,
					http.StatusConflict, true, false, ""},
				{"ignoring suppressions", `{"senderId":"s1","idempotencyKey":"k1","subject":"Hello","text":"t","ignoreSuppressions":true,"recipients":[{"email":"a@example.com","profileId":"pa","placeholders":{"x":"1","y":"2"}},{"email":"b@example.com"}]}`,
					http.StatusConflict, true, false, ""},
				{"same key, other sender account", `{"senderId":"s2","idempotencyKey":"k1","subject":"Other","text":"t","recipients":[{"email":"c@example.com"}]}`,
					http.StatusOK, false, false, first},
			}
			for _, tt := range tests {
				code, id, reason, named := postSend(t, env, tt.body)
				switch {
				case code != tt.wantCode:
					t.Errorf("%s: status %d (%s), want %d", tt.name, code, reason, tt.wantCode)
				case tt.wantReused && (reason != "IDEMPOTENCY_KEY_REUSED" || named != first):
					t.Errorf("%s: reason %q naming send %q, want IDEMPOTENCY_KEY_REUSED naming %q", tt.name, reason, named, first)
				case tt.wantSame && id != first:
					t.Errorf("%s: send %q, want the first %q", tt.name, id, first)
				case !tt.wantReused && !tt.wantSame && (id == "" || id == tt.wantNot):
					t.Errorf("%s: send %q, want a send of its own (not %q)", tt.name, id, tt.wantNot)
				}
			}

			// gRPC: the same request as a message is the same request.
			same := &ibmailv1.CreateSendRequest{SenderId: "s1", IdempotencyKey: "k1", Subject: "Hello", Text: "t", Recipients: []*ibmailv1.RecipientInput{
				{Email: "a@example.com", ProfileId: "pa", Placeholders: map[string]string{"x": "1", "y": "2"}}, {Email: "b@example.com"}}}
			resp, err := env.sends.CreateSend(ctx, same)
			if err != nil || resp.GetSend().GetId() != first {
				t.Errorf("gRPC same request: send %q, err %v; want %q", resp.GetSend().GetId(), err, first)
			}
			same.Subject = "Other"
			_, err = env.sends.CreateSend(ctx, same)
			info := grpcErrorInfo(err)
			if status.Code(err) != codes.AlreadyExists || info.GetReason() != "IDEMPOTENCY_KEY_REUSED" || info.GetMetadata()["send"] != first {
				t.Errorf("gRPC other request: err %v, ErrorInfo %v; want ALREADY_EXISTS, IDEMPOTENCY_KEY_REUSED naming %q", err, info, first)
			}

			// A send stored by an older version has no digest: a retry
			// with its key gets it back, whatever the request.
			code, legacy, reason, _ := postSend(t, env, `{"senderId":"s1","idempotencyKey":"old","subject":"Hello","text":"t","recipients":[{"email":"a@example.com"}]}`)
			if code != http.StatusOK {
				t.Fatalf("legacy send: %d %s", code, reason)
			}
			env.corrupt(t, `UPDATE sends SET request_digest = NULL WHERE id = ?`, `UPDATE sends SET request_digest = NULL WHERE id = $1`, legacy)
			if code, id, reason, _ := postSend(t, env, `{"senderId":"s1","idempotencyKey":"old","subject":"Changed","text":"t","recipients":[{"email":"z@example.com"}]}`); code != http.StatusOK || id != legacy {
				t.Errorf("retry of a send without digest: %d %q %s, want 200 with %q", code, id, reason, legacy)
			}
		})
	}
}

// TestIdempotencyKeyConcurrent: 20 concurrent identical requests with one
// key make one send, which all of them get; 8 concurrent different
// requests with another key make one send, and the other 7 are told 409
// naming it.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			env := newTestEnv(t, engine.opts...)
			provisionSender(t, env, "https://c1.api.infobip.com")
			type answer struct {
				code              int
				id, reason, named string
			}
			race := func(n int, body func(i int) string) []answer {
				out := make([]answer, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						a := &out[i]
						a.code, a.id, a.reason, a.named = postSend(t, env, body(i))
					})
				}
				wg.Wait()
				return out
			}
			identical := race(20, func(int) string {
				return `{"senderId":"s1","idempotencyKey":"same","subject":"s","text":"t","recipients":[{"email":"a@example.com"}]}`
			})
			for i, a := range identical {
				if a.code != http.StatusOK || a.id != identical[0].id {
					t.Errorf("identical request %d: %+v, want 200 with %q", i, a, identical[0].id)
				}
			}
			different := race(8, func(i int) string {
				return fmt.Sprintf(`{"senderId":"s1","idempotencyKey":"contested","subject":"s %d","text":"t","recipients":[{"email":"a@example.com"}]}`, i)
			})
			winner := ""
			for _, a := range different {
				if a.code == http.StatusOK {
					if winner != "" {
						t.Errorf("two sends were created: %q and %q", winner, a.id)
					}
					winner = a.id
				}
			}
			if winner == "" {
				t.Fatalf("no request won: %+v", different)
			}
			for i, a := range different {
				if a.code != http.StatusOK && (a.code != http.StatusConflict || a.reason != "IDEMPOTENCY_KEY_REUSED" || a.named != winner) {
					t.Errorf("different request %d: %+v, want 200 or 409 IDEMPOTENCY_KEY_REUSED naming %q", i, a, winner)
				}
			}
			list, err := env.sends.ListSends(context.Background(), &ibmailv1.ListSendsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(list.GetSends()); n != 2 {
				t.Errorf("sends stored = %d, want 2 (one per key)", n)
			}
		})
	}
}
