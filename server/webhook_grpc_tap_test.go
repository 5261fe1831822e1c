package server_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/server"
)

// TestGRPCWebhookWithoutCredentialIsRefusedUnread sends IngestDeliveryReports
// over gRPC with no webhook credential and a message larger than the
// server receives. Refused when its headers arrive, the call answers
// Unauthenticated; had the server read the message first, as it did, it
// would answer ResourceExhausted (or run the handler on it). A call with a
// credential still reaches the size limit, which shows the message really
// is too large.
func TestGRPCWebhookWithoutCredentialIsRefusedUnread(t *testing.T) {
	env := newTestEnv(t, withServerOptions(func(o *server.Options) { o.MaxAPIBodyBytes = 1 << 20 }))
	huge := &ibmailv1.IngestDeliveryReportsRequest{Results: []*ibmailv1.DeliveryReport{{
		MessageId: "m-big", To: "big@example.com", CallbackData: strings.Repeat("x", 3<<20),
	}}}
	client := ibmailv1.NewDeliveryReportServiceClient(env.conn)
	send := grpc.MaxCallSendMsgSize(8 << 20)
	tests := []struct {
		name       string
		md         metadata.MD
		wantCode   codes.Code
		wantReason string
	}{
		{"no credential", nil, codes.Unauthenticated, string(server.ReasonWebhookUnauthorized)},
		{"two credentials", metadata.Pairs("x-ibmail-webhook-token", "a", "x-ibmail-webhook-token", "b"), codes.Unauthenticated, string(server.ReasonWebhookUnauthorized)},
		{"a credential", metadata.Pairs("x-ibmail-webhook-token", testSecret), codes.ResourceExhausted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.NewOutgoingContext(context.Background(), tt.md)
			_, err := client.IngestDeliveryReports(ctx, huge, send)
			st := status.Convert(err)
			if st.Code() != tt.wantCode {
				t.Fatalf("code = %v (%s), want %v", st.Code(), st.Message(), tt.wantCode)
			}
			if tt.wantReason == "" {
				return
			}
			var reason string
			for _, d := range st.Details() {
				if info, ok := d.(*errdetails.ErrorInfo); ok {
					reason = info.GetReason()
				}
			}
			if reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", reason, tt.wantReason)
			}
		})
	}
}
