package server_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store"
)

// digestCounter counts the store's lookups of connections by secret.
type digestCounter struct {
	store.Store
	lookups atomic.Int64
}

func (c *digestCounter) ConnectionByWebhookDigest(ctx context.Context, digest []byte) (store.Connection, error) {
	c.lookups.Add(1)
	return c.Store.ConnectionByWebhookDigest(ctx, digest)
}

// TestWebhookChecksConnectionSecretOnce: a REST webhook call with a
// connection's secret looks the secret up once, before its body is read,
// not again in the RPC behind it; a gRPC call looks it up once too.
func TestWebhookChecksConnectionSecretOnce(t *testing.T) {
	_, url := newSandbox(t, sandbox.Options{ReportDelay: time.Hour})
	counter := &digestCounter{}
	env := newTestEnv(t, withAllowedBaseURL(url), withDispatcher(nil), withServerOptions(func(o *server.Options) {
		counter.Store = o.Store
		o.Store = counter
	}))
	ctx := context.Background()
	resp, err := env.conns.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{
		Id: "conn-a", ApiKey: sandboxKey, BaseUrl: url}})
	if err != nil {
		t.Fatal(err)
	}
	secret := resp.GetWebhookSecret()

	before := counter.lookups.Load()
	code, got := env.do(t, http.MethodPost, server.WebhookPath, "application/json", sandbox.ExampleDeliveryReports("m", 0, 1), basicAuth("infobip", secret))
	if code != http.StatusOK || got["accepted"] != 1.0 {
		t.Fatalf("REST call: %d %v", code, got)
	}
	if n := counter.lookups.Load() - before; n != 1 {
		t.Errorf("a REST call looked its secret up %d times, want 1", n)
	}

	before = counter.lookups.Load()
	var req ibmailv1.IngestDeliveryReportsRequest
	req.Results = []*ibmailv1.DeliveryReport{{MessageId: "m-grpc", To: "a@example.com"}}
	if _, err := env.reports.IngestDeliveryReports(metadata.AppendToOutgoingContext(ctx, "x-ibmail-webhook-token", secret), &req); err != nil {
		t.Fatalf("gRPC call: %v", err)
	}
	if n := counter.lookups.Load() - before; n != 1 {
		t.Errorf("a gRPC call looked its secret up %d times, want 1", n)
	}

	// A wrong secret is still refused, before the body.
	code, _ = env.do(t, http.MethodPost, server.WebhookPath, "application/json", sandbox.ExampleDeliveryReports("m", 1, 1), basicAuth("infobip", secret+"x"))
	if code != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d, want 401", code)
	}
}
