package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	"github.com/ibmail/ibmail/classifier"
	"github.com/ibmail/ibmail/dispatch"
	"github.com/ibmail/ibmail/events"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/secret"
	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
	"github.com/ibmail/ibmail/store/postgres/pgtest"
	"github.com/ibmail/ibmail/store/sqlite"
)

// testSecret is the webhook secret of every test server.
const testSecret = "s3cret-webhook-value"

// testEnv is a whole server on a temporary SQLite store: gRPC over bufconn
// and REST over an httptest server, with its log captured.
type testEnv struct {
	store   store.Store
	rest    *httptest.Server
	conn    *grpc.ClientConn
	logs    *syncBuffer
	reports ibmailv1.DeliveryReportServiceClient
	classes ibmailv1.ClassifierServiceClient
	people  ibmailv1.ProfileServiceClient
	conns   ibmailv1.ConnectionServiceClient
	senders ibmailv1.SenderServiceClient
	sends   ibmailv1.SendServiceClient
	supps   ibmailv1.SuppressionServiceClient
	domains ibmailv1.SendingDomainServiceClient
	events  ibmailv1.EventServiceClient
	health  healthpb.HealthClient
	srv     *server.Server
	// stop ends the context the server was built with, as SIGTERM does in
	// ibmaild; the cleanup calls it too.
	stop context.CancelFunc
	// sqlitePath or postgresDSN is where the store keeps its tables, for
	// tests that write them behind its back (as an older version could).
	sqlitePath, postgresDSN string
	// shutdown stops the server and closes its store, as the cleanup does,
	// for a test that restarts on the same store; it runs once.
	shutdown func()
}

// envOption adjusts a test server.
type envOption func(*envConfig)

type envConfig struct {
	postgres bool
	// postgresDSN, when set, is the PostgreSQL store to open instead of a
	// fresh schema: a second replica of another env's store.
	postgresDSN string
	// sqlitePath, when set, is the SQLite file to open instead of a new
	// one: a restart on another server's store.
	sqlitePath    string
	allowBaseURLs []string
	dispatchers   int
	dispatchOpts  func(*dispatch.Options)
	sequencer     bool
	serverOpts    []func(*server.Options)
}

// withServerOptions adjusts the server's options after the harness has
// filled them in.
// engines are the stores a test runs on, each as a subtest: SQLite, and
// PostgreSQL, which skips with a message when there is none.
var engines = []struct {
	name string
	opts []envOption
}{
	{"sqlite", nil},
	{"postgres", []envOption{withPostgres()}},
}

func withServerOptions(adjust func(*server.Options)) envOption {
	return func(c *envConfig) { c.serverOpts = append(c.serverOpts, adjust) }
}

// withSequencer runs an event sequencer beside the server, as ibmaild
// does, so that events get their positions for WatchEvents.
func withSequencer() envOption {
	return func(c *envConfig) { c.sequencer = true }
}

// withPostgres puts the server on a fresh PostgreSQL schema instead of
// SQLite (the test skips when PostgreSQL is not there).
func withPostgres() envOption {
	return func(c *envConfig) { c.postgres = true }
}

// withReplicaOf puts the server on the PostgreSQL store of other, as a
// second replica of it.
func withReplicaOf(other *testEnv) envOption {
	return func(c *envConfig) { c.postgres, c.postgresDSN = true, other.postgresDSN }
}

// withSQLitePath opens the SQLite store at path, as a server restarted on
// it would.
func withSQLitePath(path string) envOption {
	return func(c *envConfig) { c.sqlitePath = path }
}

// withAllowedBaseURL admits a non-Infobip origin, such as a sandbox.
func withAllowedBaseURL(u string) envOption {
	return func(c *envConfig) { c.allowBaseURLs = append(c.allowBaseURLs, u) }
}

// withDispatcher runs a dispatcher beside the server, tuned for tests
// (fast polls, short backoff) and then by adjust, if not nil.
func withDispatcher(adjust func(*dispatch.Options)) envOption {
	return withDispatchers(1, adjust)
}

// withDispatchers runs n dispatchers under their own owner names, as n
// replicas on one store would.
func withDispatchers(n int, adjust func(*dispatch.Options)) envOption {
	return func(c *envConfig) { c.dispatchers, c.dispatchOpts = n, adjust }
}

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	var cfg envConfig
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var st store.Store
	var err error
	var sqlitePath, postgresDSN string
	if cfg.postgres {
		postgresDSN = cfg.postgresDSN
		if postgresDSN == "" {
			postgresDSN = pgtest.FreshSchema(t)
		}
		st, err = postgres.Open(ctx, postgresDSN)
	} else {
		sqlitePath = cfg.sqlitePath
		if sqlitePath == "" {
			sqlitePath = filepath.Join(t.TempDir(), "ibmail.db")
		}
		st, err = sqlite.Open(ctx, sqlitePath)
	}
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	box, err := secret.NewBox(bytes.Repeat([]byte{42}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	vault := server.NewVault(box)
	rest := httptest.NewUnstartedServer(nil)
	publicURL := "http://" + rest.Listener.Addr().String()
	var dispatchers []*dispatch.Dispatcher
	for i := range cfg.dispatchers {
		do := dispatch.Options{
			Store:          st,
			Mailers:        server.MailerSource(st, vault, publicURL, nil),
			Owner:          fmt.Sprintf("test-dispatcher-%d", i),
			Lease:          time.Minute,
			Poll:           20 * time.Millisecond,
			Backoff:        dispatch.Backoff{Base: 10 * time.Millisecond, Max: 200 * time.Millisecond},
			AmbiguityDelay: 500 * time.Millisecond,
			RequestTimeout: 30 * time.Second,
			Defaults:       dispatch.Limits{RequestsPerSecond: 1000, Concurrency: 4},
			Logger:         logger.With(slog.String("component", "dispatch")),
		}
		if cfg.dispatchOpts != nil {
			cfg.dispatchOpts(&do)
		}
		dispatchers = append(dispatchers, dispatch.New(do))
	}
	wake := func() {
		for _, d := range dispatchers {
			d.Wake()
		}
	}
	so := server.Options{
		Store:          st,
		Engine:         classifier.Default(),
		WebhookSecret:  testSecret,
		Vault:          vault,
		BaseURLs:       server.BaseURLPolicy{Allowed: cfg.allowBaseURLs},
		PublicURL:      publicURL,
		Tester:         server.InfobipTester{},
		WakeDispatcher: wake,
		Logger:         logger,
		MaxBodyBytes:   1 << 20,
	}
	var seq *events.Sequencer
	if cfg.sequencer {
		seq = events.NewSequencer(events.SequencerOptions{Store: st, Owner: "test", Poll: 10 * time.Millisecond, Logger: logger})
		so.EventsChanged = seq.Changed
	}
	for _, adjust := range cfg.serverOpts {
		adjust(&so)
	}
	srv, err := server.New(ctx, so)
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
	rest.Config.Handler = srv.Handler()
	rest.Start()
	var background sync.WaitGroup
	for _, d := range dispatchers {
		background.Go(func() { d.Run(ctx) }) //nolint:errcheck
	}
	if seq != nil {
		background.Go(func() { seq.Run(ctx) }) //nolint:errcheck
	}
	shutdown := sync.OnceFunc(func() {
		cancel()
		background.Wait()
		rest.Close()
		conn.Close()
		srv.Close()
		st.Close()
	})
	t.Cleanup(shutdown)
	return &testEnv{
		store: st, rest: rest, conn: conn, logs: logs, srv: srv, stop: cancel, sqlitePath: sqlitePath, postgresDSN: postgresDSN,
		shutdown: shutdown,
		events:   ibmailv1.NewEventServiceClient(conn),
		health:   healthpb.NewHealthClient(conn),
		reports:  ibmailv1.NewDeliveryReportServiceClient(conn),
		classes:  ibmailv1.NewClassifierServiceClient(conn),
		people:   ibmailv1.NewProfileServiceClient(conn),
		conns:    ibmailv1.NewConnectionServiceClient(conn),
		senders:  ibmailv1.NewSenderServiceClient(conn),
		sends:    ibmailv1.NewSendServiceClient(conn),
		supps:    ibmailv1.NewSuppressionServiceClient(conn),
		domains:  ibmailv1.NewSendingDomainServiceClient(conn),
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
