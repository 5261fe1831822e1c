package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/sandbox"
)

// keyLeak names the spelling of key that text still holds, or "".
func keyLeak(text, key string) string {
	auth := "App " + key
	spellings := map[string]string{
		"the key (any case)":          key,
		"url-encoded Authorization":   url.QueryEscape(auth),
		"base64 of the key":           base64.StdEncoding.EncodeToString([]byte(key)),
		"base64 of the Authorization": base64.StdEncoding.EncodeToString([]byte(auth)),
	}
	lower := strings.ToLower(text)
	for name, s := range spellings {
		if strings.Contains(lower, strings.ToLower(s)) {
			return name
		}
	}
	return ""
}

// redirectTarget is a server that counts what reaches it: the place a
// hostile base URL redirects to, which must get nothing.
func redirectTarget(t *testing.T) (*atomic.Int64, string) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return &hits, srv.URL
}

// TestUpstreamRedirectIsNeverFollowed: a base URL that answers 307 to
// another port of the same host gets no second request there, with or
// without the key. The connection test explains the redirect naming only
// its target's origin; a send fails at once, its recipients' reason naming
// the same, after one request: the batch is not retried, so it cannot go
// out twice.
func TestUpstreamRedirectIsNeverFollowed(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			hits, targetURL := redirectTarget(t)
			target, _ := url.Parse(targetURL)
			wantOrigin := "http://" + target.Host
			env, sb := sendingEnv(t, sandbox.Options{}, nil, engine.opts...)
			sb.SetHostile(sandbox.Hostile{RedirectTo: targetURL + "/email/1/domains?token=query-secret-123"})

			code, got := env.do(t, http.MethodPost, "/v1/connections/c1:test", "application/json", []byte(`{}`))
			if code != http.StatusOK {
				t.Fatalf(":test = %d %v", code, got)
			}
			msg, _ := got["message"].(string)
			if got["ok"] == true || got["httpStatus"] != float64(307) ||
				!strings.Contains(msg, "Infobip does not redirect") || !strings.Contains(msg, wantOrigin) {
				t.Errorf(":test = %v; want not ok, httpStatus 307, a message explaining the redirect to %s", got, wantOrigin)
			}
			if strings.Contains(toJSON(got), "query-secret") || strings.Contains(toJSON(got), "/email/1/domains") {
				t.Errorf(":test answer %v names the redirect's path or query", got)
			}

			before := sb.Stats().Requests
			resp, err := env.sends.CreateSend(context.Background(), &ibmailv1.CreateSendRequest{
				SenderId: "s1", Subject: "s", Text: "t", Recipients: recipients(3, ""),
			})
			if err != nil {
				t.Fatal(err)
			}
			s := waitSendDone(t, env, resp.GetSend().GetId())
			if s.GetAcceptedCount() != 0 {
				t.Errorf("send = %v, want nothing accepted", s)
			}
			list, err := env.sends.ListSendRecipients(context.Background(), &ibmailv1.ListSendRecipientsRequest{SendId: s.GetId()})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range list.GetRecipients() {
				if r.GetState() != ibmailv1.RecipientState_RECIPIENT_STATE_FAILED || !strings.Contains(r.GetReason(), wantOrigin) ||
					strings.Contains(r.GetReason(), "query-secret") {
					t.Errorf("recipient %s = %s %q; want failed, naming %s and nothing of the path or query", r.GetEmail(), r.GetState(), r.GetReason(), wantOrigin)
				}
			}
			if n := sb.Stats().Requests - before; n != 1 {
				t.Errorf("the send made %d requests to the base URL, want 1 (a redirect is not retried)", n)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("the redirect target got %d requests, want 0", n)
			}
			if leak := keyLeak(env.logs.String(), sandboxKey); leak != "" || strings.Contains(env.logs.String(), "query-secret") {
				t.Errorf("the log holds %s or the redirect's query", leak)
			}
		})
	}
}

// TestUpstreamErrorEchoingTheKeyIsRedacted: an Infobip error body that
// echoes the API key (upper case, URL-encoded, base64) reaches neither a
// recipient's stored reason, nor the log, nor the connection test's answer,
// while the reason still says what Infobip answered.
func TestUpstreamErrorEchoingTheKeyIsRedacted(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			env, sb := sendingEnv(t, sandbox.Options{}, nil, engine.opts...)
			sb.SetHostile(sandbox.Hostile{EchoKey: true})

			resp, err := env.sends.CreateSend(context.Background(), &ibmailv1.CreateSendRequest{
				SenderId: "s1", Subject: "s", Text: "t", Recipients: recipients(3, ""),
			})
			if err != nil {
				t.Fatal(err)
			}
			s := waitSendDone(t, env, resp.GetSend().GetId())
			list, err := env.sends.ListSendRecipients(context.Background(), &ibmailv1.ListSendRecipientsRequest{SendId: s.GetId()})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.GetRecipients()) != 3 {
				t.Fatalf("recipients = %v, want 3", list.GetRecipients())
			}
			for _, r := range list.GetRecipients() {
				reason := r.GetReason()
				if leak := keyLeak(reason, sandboxKey); leak != "" {
					t.Errorf("recipient %s reason %q holds %s", r.GetEmail(), reason, leak)
				}
				if !strings.Contains(reason, "400") || len(reason) > 600 {
					t.Errorf("recipient %s reason %q (%d bytes); want a bounded excerpt naming Infobip's 400", r.GetEmail(), reason, len(reason))
				}
			}
			code, got := env.do(t, http.MethodPost, "/v1/connections/c1:test", "application/json", []byte(`{}`))
			if leak := keyLeak(toJSON(got), sandboxKey); code != http.StatusOK || leak != "" {
				t.Errorf(":test = %d %v; holds %q", code, got, leak)
			}
			if leak := keyLeak(env.logs.String(), sandboxKey); leak != "" {
				t.Errorf("the log holds %s", leak)
			}
		})
	}
}
