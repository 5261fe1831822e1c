package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/sqlite"
)

// spyBody is an endless JSON-ish body that counts what was read of it.
type spyBody struct{ read atomic.Int64 }

func (b *spyBody) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	b.read.Add(int64(len(p)))
	return len(p), nil
}

func (b *spyBody) Close() error { return nil }

// TestRefusedCallsReadNoBody sends every REST route an endless body with no
// token, a wrong one, and a token of too low a role: each is refused, and
// not a byte of its body is read. On the old code the gateway decoded the
// body first (and read the endless one for ever).
func TestRefusedCallsReadNoBody(t *testing.T) {
	env := newAuthEnv(t, testTokens(t), 1000)
	routes, err := server.RESTRoutes()
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) < 20 {
		t.Fatalf("%d REST routes, want every route of the API", len(routes))
	}
	for route, method := range routes {
		verb, path, _ := strings.Cut(route, " ")
		// A variable that is a whole resource name (AIP-122, such as
		// {name=operations/*}) takes one; any other takes a plain id.
		path = strings.ReplaceAll(strings.Replace(path, "/v1/{}", "/v1/operations/1", 1), "{}", "x")
		cases := []struct {
			name  string
			authz string
			want  int
		}{
			{"no token", "", http.StatusUnauthorized},
			{"wrong token", "Bearer " + wrongToken, http.StatusUnauthorized},
		}
		if server.RequiredRole(method) == server.RoleAdmin {
			cases = append(cases, struct {
				name  string
				authz string
				want  int
			}{"read token", "Bearer " + readToken, http.StatusForbidden})
		}
		for _, tc := range cases {
			t.Run(route+"/"+tc.name, func(t *testing.T) {
				spy := &spyBody{}
				req := httptest.NewRequest(verb, path, nil)
				req.Body, req.ContentLength = spy, -1
				req.Header.Set("Content-Type", "application/json")
				if tc.authz != "" {
					req.Header.Set("Authorization", tc.authz)
				}
				rec := httptest.NewRecorder()
				env.srv.Handler().ServeHTTP(rec, req)
				if rec.Code != tc.want {
					t.Errorf("%s %s = %d %s, want %d", verb, path, rec.Code, rec.Body, tc.want)
				}
				if n := spy.read.Load(); n != 0 {
					t.Errorf("%s %s read %d bytes of a refused body, want 0", verb, path, n)
				}
			})
		}
	}
}

// TestBodyLimits checks that an authenticated body over its route's limit
// gets 413 BODY_TOO_LARGE having read no more than the limit, whether its
// length is declared or not, and that gRPC's limit follows.
func TestBodyLimits(t *testing.T) {
	env := newTestEnv(t, withServerOptions(func(o *server.Options) { o.MaxAPIBodyBytes = 4 << 10 }))
	for _, declared := range []bool{true, false} {
		t.Run(fmt.Sprintf("declared=%v", declared), func(t *testing.T) {
			spy := &spyBody{}
			req := httptest.NewRequest(http.MethodPost, "/v1/reports:classify", nil)
			req.Body, req.ContentLength = spy, -1
			if declared {
				req.Body, req.ContentLength = io.NopCloser(io.LimitReader(spy, 1<<20)), 1<<20
			}
			rec := httptest.NewRecorder()
			env.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "BODY_TOO_LARGE") {
				t.Fatalf("= %d %s, want 413 BODY_TOO_LARGE", rec.Code, rec.Body)
			}
			if n := spy.read.Load(); n > 64<<10 {
				t.Errorf("read %d bytes of a body over a 4 KiB limit", n)
			}
		})
	}
	// The webhook keeps its own, larger limit (1 MiB in the harness).
	big := body(strings.Repeat(report("m-1", "a@example.com", 0, "NO_ERROR", 0, "OK")+",", 20) + report("m-2", "b@example.com", 0, "NO_ERROR", 0, "OK"))
	if code, got := env.postWebhook(t, big); code != http.StatusOK {
		t.Fatalf("webhook of %d bytes = %d %v, want 200", len(big), code, got)
	}
}

// serveOnLoopback serves env's server on real loopback listeners, as
// ibmaild does, and returns the REST address.
func serveOnLoopback(t *testing.T, env *testEnv) string {
	t.Helper()
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { env.srv.Serve(ctx, grpcLis, httpLis, time.Second); close(done) }() //nolint:errcheck
	t.Cleanup(func() { cancel(); <-done })
	return httpLis.Addr().String()
}

// TestSlowBodyIsCutOff trickles a body into a real listener: the server
// answers 408 and closes once the body falls behind, while a large body
// sent at once still arrives. On the old code only the header timeout was
// set and the trickling connection stayed open.
func TestSlowBodyIsCutOff(t *testing.T) {
	env := newTestEnv(t, withServerOptions(func(o *server.Options) {
		o.Limits = server.TransportLimits{ReadHeaderTimeout: 300 * time.Millisecond, BodyMinRate: 1 << 10, BodyTimeout: 3 * time.Second}
	}))
	addr := serveOnLoopback(t, env)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s?token=%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", server.WebhookPath, testSecret)
	stopTrickle := make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopTrickle:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	defer close(stopTrickle)
	// The safety deadline only keeps a broken server from hanging the test.
	conn.SetReadDeadline(time.Now().Add(time.Minute)) //nolint:errcheck
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("trickling client: %v, want a 408 answer", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("trickling client got %d, want 408", resp.StatusCode)
	}
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the connection was not closed after the 408: %v", err)
	}

	var reports []string
	for i := range 2000 {
		reports = append(reports, report(fmt.Sprintf("m-%d", i), fmt.Sprintf("u%d@example.com", i), 0, "NO_ERROR", 0, "OK"))
	}
	big := body(reports...)
	if len(big) > 1<<20 {
		big = body(reports[:1000]...)
	}
	r, err := http.Post("http://"+addr+server.WebhookPath+"?token="+testSecret, "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("a %d-byte body sent at once = %d, want 200", len(big), r.StatusCode)
	}
}

// pingSwitch is a store whose Ping goes to whichever real store is current.
type pingSwitch struct {
	store.Store
	current atomic.Pointer[store.Store]
}

func (p *pingSwitch) Ping(ctx context.Context) error { return (*p.current.Load()).Ping(ctx) }

// EncryptionKeyCheck goes to the current store too: readiness also checks
// that the store's secrets are sealed under this server's key.
func (p *pingSwitch) EncryptionKeyCheck(ctx context.Context) ([]byte, error) {
	return (*p.current.Load()).EncryptionKeyCheck(ctx)
}

// TestGRPCHealthFollowsTheStore closes the store under a running server:
// gRPC health of the server and of each ibmail.v1 service turns
// NOT_SERVING, as a Watch sees, and back to SERVING once a store answers.
// On the old code it stayed SERVING and no service name was known.
func TestGRPCHealthFollowsTheStore(t *testing.T) {
	var sw *pingSwitch
	env := newTestEnv(t, withServerOptions(func(o *server.Options) {
		real := o.Store
		sw = &pingSwitch{Store: real}
		sw.current.Store(&real)
		o.Store = sw
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	names := []string{"", "ibmail.v1.SendService", "ibmail.v1.DeliveryReportService", "ibmail.v1.EventService"}
	watches := make([]healthpb.Health_WatchClient, len(names))
	for i, n := range names {
		w, err := env.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: n})
		if err != nil {
			t.Fatal(err)
		}
		watches[i] = w
	}
	waitFor := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for i, w := range watches {
			for {
				resp, err := w.Recv()
				if err != nil {
					t.Fatalf("watch %q: %v, want %v", names[i], err, want)
				}
				if resp.GetStatus() == want {
					break
				}
			}
		}
	}
	waitFor(healthpb.HealthCheckResponse_SERVING)
	env.store.Close()
	waitFor(healthpb.HealthCheckResponse_NOT_SERVING)
	if code, _ := env.do(t, http.MethodGet, "/healthz", "", nil); code != http.StatusOK {
		t.Errorf("/healthz during the outage = %d, want 200", code)
	}
	// The same database, opened again: it answers, and its secrets are
	// sealed under this server's key.
	fresh, err := sqlite.Open(ctx, env.sqlitePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	var st store.Store = fresh
	sw.current.Store(&st)
	waitFor(healthpb.HealthCheckResponse_SERVING)
}
