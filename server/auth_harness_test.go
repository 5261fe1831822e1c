package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/secret"
	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store/sqlite"
)

// authEnv is a testEnv whose server requires caller tokens. It mirrors
// newTestEnv (SQLite, no dispatcher) rather than changing it, since
// server.Options cannot be reached through an envOption.
type authEnv struct {
	*testEnv
	srv    *server.Server
	health healthpb.HealthClient
	events ibmailv1.EventServiceClient
}

func newAuthEnv(t testing.TB, tokens *server.Tokens, perSecond float64) *authEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ibmail.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	box, err := secret.NewBox(bytes.Repeat([]byte{42}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewUnstartedServer(nil)
	srv, err := server.New(ctx, server.Options{
		Store:         st,
		Engine:        classifier.Default(),
		WebhookSecret: testSecret,
		Vault:         server.NewVault(box),
		PublicURL:     "http://" + rest.Listener.Addr().String(),
		Tester:        server.InfobipTester{},
		Logger:        logger,
		MaxBodyBytes:  1 << 20,
		Tokens:        tokens,
		TokenRate:     perSecond,
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
	rest.Config.Handler = srv.Handler()
	rest.Start()
	t.Cleanup(func() {
		cancel()
		rest.Close()
		conn.Close()
		srv.Close()
		st.Close()
	})
	return &authEnv{
		testEnv: &testEnv{
			rest: rest, conn: conn, logs: logs,
			reports: ibmailv1.NewDeliveryReportServiceClient(conn),
			classes: ibmailv1.NewClassifierServiceClient(conn),
			people:  ibmailv1.NewProfileServiceClient(conn),
			conns:   ibmailv1.NewConnectionServiceClient(conn),
			senders: ibmailv1.NewSenderServiceClient(conn),
			sends:   ibmailv1.NewSendServiceClient(conn),
			supps:   ibmailv1.NewSuppressionServiceClient(conn),
		},
		srv:    srv,
		health: healthpb.NewHealthClient(conn),
		events: ibmailv1.NewEventServiceClient(conn),
	}
}
