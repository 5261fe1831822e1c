package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/secret"
	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store/sqlite"
)

// testWebhookSecret lets the tests ingest reports to make events.
const testWebhookSecret = "ctl-test-webhook-secret"

// testServer is a real ibmail server on a temporary SQLite store, served
// over a loopback TCP listener as ibmailctl reaches it in production.
type testServer struct {
	addr string
	conn *grpc.ClientConn // the test's own client, to set up data
}

func startServer(t *testing.T, adjust ...func(*server.Options)) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ibmail.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	box, err := secret.NewBox(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	opts := server.Options{
		Store:         st,
		Engine:        classifier.Default(),
		WebhookSecret: testWebhookSecret,
		Vault:         server.NewVault(box),
		PublicURL:     "http://127.0.0.1:1",
		Tester:        server.InfobipTester{},
	}
	for _, a := range adjust {
		a(&opts)
	}
	srv, err := server.New(ctx, opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.GRPCServer().Serve(lis) //nolint:errcheck
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		srv.Close()
		st.Close()
	})
	return &testServer{addr: lis.Addr().String(), conn: conn}
}

// provisionSender creates connection c1 and sender s1 through the API.
func (s *testServer) provisionSender(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := ibmailv1.NewConnectionServiceClient(s.conn).CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{
		Connection: &ibmailv1.Connection{Id: "c1", ApiKey: "test-api-key-0001", BaseUrl: "https://c1.api.infobip.com"},
	}); err != nil {
		t.Fatalf("create connection: %v", err)
	}
	if _, err := ibmailv1.NewSenderServiceClient(s.conn).CreateSender(ctx, &ibmailv1.CreateSenderRequest{
		Sender: &ibmailv1.Sender{Id: "s1", ConnectionId: "c1", FromAddress: "news@example.com"},
	}); err != nil {
		t.Fatalf("create sender: %v", err)
	}
}

// ingest stores reports through the webhook RPC, so that they become
// profile events.
func (s *testServer) ingest(t *testing.T, reports ...*ibmailv1.DeliveryReport) {
	t.Helper()
	resp, err := ibmailv1.NewDeliveryReportServiceClient(s.conn).IngestDeliveryReports(webhookContext(), &ibmailv1.IngestDeliveryReportsRequest{Results: reports})
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	if int(resp.GetEvents()) != len(reports) {
		t.Fatalf("ingest: %d events of %d reports: %v", resp.GetEvents(), len(reports), resp)
	}
}

// webhookContext authenticates a webhook RPC with the server-wide secret,
// as Infobip's posts to the REST webhooks do with HTTP Basic.
func webhookContext() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "x-ibmail-webhook-token", testWebhookSecret)
}

// ingestTracking stores tracking reports through the tracking webhook's
// RPC, so that they become profile events and stored tracking reports.
func (s *testServer) ingestTracking(t *testing.T, reports ...*ibmailv1.TrackingReport) *ibmailv1.IngestTrackingReportsResponse {
	t.Helper()
	resp, err := ibmailv1.NewDeliveryReportServiceClient(s.conn).IngestTrackingReports(webhookContext(), &ibmailv1.IngestTrackingReportsRequest{Reports: reports})
	if err != nil {
		t.Fatalf("ingest tracking reports: %v", err)
	}
	if int(resp.GetAccepted()) != len(reports) {
		t.Fatalf("ingest tracking reports: %d accepted of %d: %v", resp.GetAccepted(), len(reports), resp)
	}
	return resp
}

// postPlatformEvent posts one platform event through the platform-events
// webhook's RPC, as Infobip announces a warning or a block.
func (s *testServer) postPlatformEvent(t *testing.T, ev *ibmailv1.PlatformEvent) {
	t.Helper()
	resp, err := ibmailv1.NewDeliveryReportServiceClient(s.conn).IngestPlatformEvents(webhookContext(), &ibmailv1.IngestPlatformEventsRequest{Events: []*ibmailv1.PlatformEvent{ev}})
	if err != nil {
		t.Fatalf("post platform event: %v", err)
	}
	if resp.GetAccepted() != 1 {
		t.Fatalf("post platform event: not accepted: %v", resp)
	}
}

// hardBounce is a report Infobip sends for a hard bounce, for the profile
// named in callbackData.
func hardBounce(messageID, to, profile, doneAt string) *ibmailv1.DeliveryReport {
	return &ibmailv1.DeliveryReport{
		MessageId: messageID, To: to, DoneAt: doneAt,
		CallbackData: `{"profileId": "` + profile + `"}`,
		Status:       &ibmailv1.ReportStatus{Id: 4, GroupId: 2, GroupName: "UNDELIVERABLE", Name: "UNDELIVERABLE_REJECTED_OPERATOR"},
		Error:        &ibmailv1.ReportError{Id: 6012, Name: "EC_HARD_BOUNCE", GroupId: 2, GroupName: "BOUNCED", Permanent: true},
	}
}

// result is what one ibmailctl run did.
type result struct {
	code           int
	stdout, stderr string
}

// ctl runs ibmailctl against addr with stdin, the way a shell would.
func ctl(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	full := append([]string{"--addr", addr, "--timeout", "10s"}, args...)
	var out, errOut bytes.Buffer
	code := run(context.Background(), full, strings.NewReader(stdin), &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// writeFile writes a file in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// unusedAddr is a loopback address nothing listens on.
func unusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
