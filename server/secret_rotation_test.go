package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/server"
)

// TestWebhookSecretRotationRequests checks the rotation RPCs at the door,
// on both engines: grace periods out of range and unknown connections are
// refused naming the field, a rotation with no grace retires the old
// secret at once, and the server-wide secret set by configuration cannot
// be rotated through the API.
func TestWebhookSecretRotationRequests(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			env := newTestEnv(t, engine.opts...)
			ctx := context.Background()
			created, err := env.conns.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{
				Id: "c1", ApiKey: "key-0123456789abcdef", BaseUrl: "https://x1.api.infobip.com"}})
			if err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name      string
				id        string
				grace     *durationpb.Duration
				wantCode  codes.Code
				wantInMsg string
			}{
				{"negative grace", "c1", durationpb.New(-time.Second), codes.InvalidArgument, "grace_period"},
				{"grace over 30 days", "c1", durationpb.New(31 * 24 * time.Hour), codes.InvalidArgument, "grace_period"},
				{"invalid duration", "c1", &durationpb.Duration{Seconds: 1, Nanos: -1}, codes.InvalidArgument, "grace_period"},
				{"bad id", "C/1", nil, codes.InvalidArgument, "connection_id"},
				{"unknown connection", "nope", nil, codes.NotFound, "nope"},
			}
			for _, tt := range tests {
				_, err := env.conns.RotateWebhookSecret(ctx, &ibmailv1.RotateWebhookSecretRequest{ConnectionId: tt.id, GracePeriod: tt.grace})
				if st := status.Convert(err); st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantInMsg) {
					t.Errorf("%s: %v, want %v naming %q", tt.name, err, tt.wantCode, tt.wantInMsg)
				}
			}

			// No grace: the old secret is refused at once, the new accepted.
			rot, err := env.conns.RotateWebhookSecret(ctx, &ibmailv1.RotateWebhookSecretRequest{ConnectionId: "c1", GracePeriod: durationpb.New(0)})
			if err != nil {
				t.Fatal(err)
			}
			if rot.GetConnection().GetPreviousWebhookSecretExpireTime() != nil {
				t.Errorf("a rotation without grace shows a previous secret: %v", rot.GetConnection())
			}
			for _, c := range []struct {
				credential string
				want       int
			}{{created.GetWebhookSecret(), http.StatusUnauthorized}, {rot.GetWebhookSecret(), http.StatusOK}} {
				code, _ := env.do(t, http.MethodPost, server.WebhookPath, "application/json",
					[]byte(body(report("m-"+c.credential[:4], "a@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"))), basicAuth("infobip", c.credential))
				if code != c.want {
					t.Errorf("webhook after a rotation without grace: status %d, want %d", code, c.want)
				}
			}

			// The harness sets the server-wide secret by configuration.
			for name, call := range map[string]func() error{
				"rotate": func() error {
					_, err := env.conns.RotateServerWebhookSecret(ctx, &ibmailv1.RotateServerWebhookSecretRequest{})
					return err
				},
				"retire": func() error {
					_, err := env.conns.RetirePreviousServerWebhookSecret(ctx, &ibmailv1.RetirePreviousServerWebhookSecretRequest{})
					return err
				},
			} {
				if st := status.Convert(call()); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "--webhook-secret") {
					t.Errorf("%s the configured server-wide secret: %v, want FAILED_PRECONDITION naming --webhook-secret", name, st.Err())
				}
			}
			if strings.Contains(env.logs.String(), rot.GetWebhookSecret()) {
				t.Error("the rotated secret appears in the log")
			}
		})
	}
}
