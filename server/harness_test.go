package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store/sqlite"
)

// testSecret is the webhook secret of every test server.
const testSecret = "s3cret-webhook-value"

// testEnv is a whole server on a temporary SQLite store: gRPC over bufconn
// and REST over an httptest server, with its log captured.
type testEnv struct {
	rest    *httptest.Server
	conn    *grpc.ClientConn
	logs    *syncBuffer
	reports ibmailv1.DeliveryReportServiceClient
	classes ibmailv1.ClassifierServiceClient
	people  ibmailv1.ProfileServiceClient
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ibmail.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	logs := &syncBuffer{}
	srv, err := server.New(ctx, server.Options{
		Store:        st,
		Engine:       classifier.Default(),
		WebhookAuth:  server.NewStaticWebhookSecret(testSecret),
		Logger:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MaxBodyBytes: 1 << 20,
	})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	lis := bufconn.Listen(1 << 20)
	go srv.GRPCServer().Serve(lis) //nolint:errcheck
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	rest := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		rest.Close()
		conn.Close()
		srv.Close()
		st.Close()
	})
	return &testEnv{
		rest: rest, conn: conn, logs: logs,
		reports: ibmailv1.NewDeliveryReportServiceClient(conn),
		classes: ibmailv1.NewClassifierServiceClient(conn),
		people:  ibmailv1.NewProfileServiceClient(conn),
	}
}

// do sends a REST request and returns the status and the decoded JSON body.
func (e *testEnv) do(t *testing.T, method, path, contentType string, body []byte, mutate ...func(*http.Request)) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.rest.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, m := range mutate {
		m(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		out = map[string]any{"_raw": string(raw)}
	}
	return resp.StatusCode, out
}

// postWebhook posts a body to the webhook with the test secret as Basic
// password.
func (e *testEnv) postWebhook(t *testing.T, body string) (int, map[string]any) {
	t.Helper()
	return e.do(t, http.MethodPost, server.WebhookPath, "application/json", []byte(body), basicAuth("infobip", testSecret))
}

func basicAuth(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

// report builds one Infobip results[] item as JSON.
func report(messageID, to string, errID int, errName string, groupID int, groupName string) string {
	r := map[string]any{
		"bulkId":    "bulk-1",
		"messageId": messageID,
		"to":        to,
		"doneAt":    "2024-05-01T10:00:00.000+0000",
		"sentAt":    "2024-05-01T09:59:58.123+0000",
		"status":    map[string]any{"id": 4, "groupId": 2, "groupName": "UNDELIVERABLE", "name": "UNDELIVERABLE_REJECTED_OPERATOR"},
		"error":     map[string]any{"id": errID, "name": errName, "groupId": groupID, "groupName": groupName, "permanent": true},
		"smtp":      map[string]any{"response": "550 5.1.1 user unknown"},
	}
	b, _ := json.Marshal(r)
	return string(b)
}

func body(reports ...string) string { return `{"results":[` + strings.Join(reports, ",") + `]}` }

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
