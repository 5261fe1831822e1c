package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/server"
)

// The tokens of the auth tests. hashedToken appears in the tokens file only
// as its digest.
const (
	readToken   = "read-token-0123456789abcdef"
	sendToken   = "send-token-0123456789abcdef"
	adminToken  = "admin-token-0123456789abcdef"
	hashedToken = "hashed-admin-token-0123456789"
	wrongToken  = "wrong-token-0123456789abcdef"
)

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func testTokens(t testing.TB) *server.Tokens {
	t.Helper()
	file := "# caller tokens\n\n" +
		"read " + readToken + "\n" +
		"send  " + sendToken + "\n" +
		"admin\t" + adminToken + "\n" +
		"admin sha256:" + sha256Hex(hashedToken) + "\n"
	tokens, err := server.ParseTokens(strings.NewReader(file))
	if err != nil {
		t.Fatalf("ParseTokens: %v", err)
	}
	return tokens
}

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) {
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
	}
}

func withToken(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func reasonOfErr(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// restReason digs the ErrorInfo reason out of a gateway error body.
func restReason(body map[string]any) string {
	details, _ := body["details"].([]any)
	for _, d := range details {
		if m, ok := d.(map[string]any); ok && m["reason"] != nil {
			return m["reason"].(string)
		}
	}
	return ""
}

// TestAuth checks each answer of the token check over gRPC and over the
// REST gateway.
func TestAuth(t *testing.T) {
	env := newAuthEnv(t, testTokens(t), 1000)
	type route struct {
		name   string
		path   string // REST, GET
		call   func(context.Context) error
		needed string // role named in a PERMISSION_DENIED message
	}
	read := route{"read", "/v1/deliveryReports", func(ctx context.Context) error {
		_, err := env.reports.ListDeliveryReports(ctx, &ibmailv1.ListDeliveryReportsRequest{})
		return err
	}, "read"}
	send := route{"send", "/v1/sends", func(ctx context.Context) error {
		_, err := env.sends.ListSends(ctx, &ibmailv1.ListSendsRequest{})
		return err
	}, "send"}
	admin := route{"admin", "/v1/connections", func(ctx context.Context) error {
		_, err := env.conns.ListConnections(ctx, &ibmailv1.ListConnectionsRequest{})
		return err
	}, "admin"}
	tests := []struct {
		name     string
		token    string
		raw      string // an Authorization value other than Bearer token
		route    route
		code     codes.Code
		http     int
		reason   string
		nameRole bool
	}{
		{name: "no token", route: read, code: codes.Unauthenticated, http: http.StatusUnauthorized, reason: "TOKEN_MISSING"},
		{name: "not bearer", raw: "Basic " + readToken, route: read, code: codes.Unauthenticated, http: http.StatusUnauthorized, reason: "TOKEN_MISSING"},
		{name: "wrong token", token: wrongToken, route: read, code: codes.Unauthenticated, http: http.StatusUnauthorized, reason: "TOKEN_INVALID"},
		{name: "digest itself is no token", token: "sha256:" + sha256Hex(hashedToken), route: read, code: codes.Unauthenticated, http: http.StatusUnauthorized, reason: "TOKEN_INVALID"},
		{name: "read on read", token: readToken, route: read, code: codes.OK, http: http.StatusOK},
		{name: "read on send", token: readToken, route: send, code: codes.PermissionDenied, http: http.StatusForbidden, reason: "PERMISSION_DENIED", nameRole: true},
		{name: "read on admin", token: readToken, route: admin, code: codes.PermissionDenied, http: http.StatusForbidden, reason: "PERMISSION_DENIED", nameRole: true},
		{name: "send on send", token: sendToken, route: send, code: codes.OK, http: http.StatusOK},
		{name: "send on admin", token: sendToken, route: admin, code: codes.PermissionDenied, http: http.StatusForbidden, reason: "PERMISSION_DENIED", nameRole: true},
		{name: "admin on admin", token: adminToken, route: admin, code: codes.OK, http: http.StatusOK},
		{name: "admin on read", token: adminToken, route: read, code: codes.OK, http: http.StatusOK},
		{name: "sha256 form on admin", token: hashedToken, route: admin, code: codes.OK, http: http.StatusOK},
	}
	for _, tc := range tests {
		authz := tc.raw
		if tc.token != "" {
			authz = "Bearer " + tc.token
		}
		t.Run(tc.name+"/grpc", func(t *testing.T) {
			ctx := context.Background()
			if authz != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", authz)
			}
			err := tc.route.call(ctx)
			if status.Code(err) != tc.code {
				t.Fatalf("%s: err = %v, want %v", tc.route.name, err, tc.code)
			}
			if tc.reason != "" && reasonOfErr(err) != tc.reason {
				t.Errorf("reason = %q, want %q", reasonOfErr(err), tc.reason)
			}
			if tc.nameRole && !strings.Contains(status.Convert(err).Message(), "the "+tc.route.needed+" role") {
				t.Errorf("message %q does not name the %s role", status.Convert(err).Message(), tc.route.needed)
			}
		})
		t.Run(tc.name+"/rest", func(t *testing.T) {
			code, body := env.do(t, http.MethodGet, tc.route.path, "", nil, func(r *http.Request) {
				if authz != "" {
					r.Header.Set("Authorization", authz)
				}
			})
			if code != tc.http {
				t.Fatalf("GET %s = %d %v, want %d", tc.route.path, code, body, tc.http)
			}
			if tc.reason != "" && restReason(body) != tc.reason {
				t.Errorf("reason = %q, want %q (%v)", restReason(body), tc.reason, body)
			}
			if tc.nameRole && !strings.Contains(toJSON(body), "the "+tc.route.needed+" role") {
				t.Errorf("body %v does not name the %s role", body, tc.route.needed)
			}
		})
	}

	t.Run("stream needs a token", func(t *testing.T) {
		stream, err := env.events.WatchEvents(context.Background(), &ibmailv1.WatchEventsRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.Unauthenticated || reasonOfErr(err) != "TOKEN_MISSING" {
			t.Fatalf("WatchEvents without token: %v, want Unauthenticated TOKEN_MISSING", err)
		}
	})
	t.Run("stream with a read token", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(withToken(context.Background(), readToken), 300*time.Millisecond)
		defer cancel()
		stream, err := env.events.WatchEvents(ctx, &ibmailv1.WatchEventsRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		// No events yet: the stream stays open until the deadline.
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("WatchEvents with a read token: %v, want DeadlineExceeded", err)
		}
	})
	t.Run("webhook takes its secret, no token", func(t *testing.T) {
		code, body := env.postWebhook(t, body(report("m-1", "a@example.com", 0, "NO_ERROR", 0, "OK")))
		if code != http.StatusOK {
			t.Fatalf("webhook = %d %v, want 200", code, body)
		}
		code, _ = env.do(t, http.MethodPost, server.WebhookPath, "application/json", []byte(body0), bearer(adminToken))
		if code != http.StatusUnauthorized {
			t.Fatalf("webhook with a bearer token but no secret = %d, want 401", code)
		}
	})
	t.Run("health is open", func(t *testing.T) {
		resp, err := env.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("grpc health: %v %v", resp, err)
		}
		if code, body := env.do(t, http.MethodGet, "/healthz", "", nil); code != http.StatusOK {
			t.Fatalf("/healthz = %d %v", code, body)
		}
	})
	t.Run("internal context is admin", func(t *testing.T) {
		conns := ibmailv1.NewConnectionServiceClient(env.srv.ClientConn())
		if _, err := conns.ListConnections(env.srv.InternalContext(context.Background()), &ibmailv1.ListConnectionsRequest{}); err != nil {
			t.Fatalf("ListConnections in-process with InternalContext: %v", err)
		}
		if _, err := conns.ListConnections(context.Background(), &ibmailv1.ListConnectionsRequest{}); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("ListConnections in-process without token: %v, want Unauthenticated", err)
		}
	})

	// Nothing the callers sent as a token may show in the log.
	logs := env.logs.String()
	for _, tok := range []string{readToken, sendToken, adminToken, hashedToken, wrongToken} {
		if strings.Contains(logs, tok) {
			t.Errorf("the log holds the token %q", tok)
		}
	}
}

const body0 = `{"results":[]}`

// TestAuthRateLimit checks the per-token limit: with 1 request/s, the
// second call at once is refused with a retry hint, and other tokens keep
// their own budget.
func TestAuthRateLimit(t *testing.T) {
	env := newAuthEnv(t, testTokens(t), 1)
	ctx := withToken(context.Background(), readToken)
	if _, err := env.reports.ListDeliveryReports(ctx, &ibmailv1.ListDeliveryReportsRequest{}); err != nil {
		t.Fatalf("first call: %v", err)
	}
	_, err := env.reports.ListDeliveryReports(ctx, &ibmailv1.ListDeliveryReportsRequest{})
	if status.Code(err) != codes.ResourceExhausted || reasonOfErr(err) != "RATE_LIMITED" {
		t.Fatalf("second call: %v, want ResourceExhausted RATE_LIMITED", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 || retry.GetRetryDelay().AsDuration() > time.Second {
		t.Fatalf("RetryInfo = %v, want a delay in (0, 1s]", retry)
	}
	if !strings.Contains(status.Convert(err).Message(), "retry after") {
		t.Errorf("message %q gives no retry hint", status.Convert(err).Message())
	}

	// The same token over REST shares the budget: 429.
	code, limited := env.do(t, http.MethodGet, "/v1/deliveryReports", "", nil, bearer(readToken))
	if code != http.StatusTooManyRequests || restReason(limited) != "RATE_LIMITED" {
		t.Fatalf("REST with a spent token = %d %v, want 429 RATE_LIMITED", code, limited)
	}
	// Another token is not affected, over REST first this time.
	if code, body := env.do(t, http.MethodGet, "/v1/deliveryReports", "", nil, bearer(sendToken)); code != http.StatusOK {
		t.Fatalf("REST with another token = %d %v, want 200", code, body)
	}
	if code, body := env.do(t, http.MethodGet, "/v1/deliveryReports", "", nil, bearer(sendToken)); code != http.StatusTooManyRequests {
		t.Fatalf("REST second call = %d %v, want 429", code, body)
	}
	// The webhook and health are not limited by any token.
	for i := range 3 {
		if code, got := env.postWebhook(t, body(report("m-"+strconv.Itoa(i), "a@example.com", 0, "NO_ERROR", 0, "OK"))); code != http.StatusOK {
			t.Fatalf("webhook = %d %v", code, got)
		}
	}
	if strings.Contains(env.logs.String(), readToken) || strings.Contains(toJSON(limited), readToken) {
		t.Error("a token leaked into the log or an answer")
	}
}

func TestParseTokens(t *testing.T) {
	digest := sha256Hex("some-long-enough-token")
	tests := []struct {
		name    string
		file    string
		wantErr string // substring; "" for success
		want    int    // tokens
	}{
		{name: "good", file: "# comment\n\nread " + readToken + "\n  # indented comment\nadmin sha256:" + digest + "\nsend " + sendToken + "\n", want: 3},
		{name: "uppercase digest", file: "read sha256:" + strings.ToUpper(digest) + "\n", want: 1},
		{name: "bad role", file: "read " + readToken + "\nroot " + adminToken + "\n", wantErr: `line 2: unknown role "root"`},
		{name: "bad digest hex", file: "\n\nadmin sha256:" + strings.Repeat("z", 64) + "\n", wantErr: "line 3: a sha256: token must be followed by 64 hex digits"},
		{name: "short digest", file: "admin sha256:" + digest[:40] + "\n", wantErr: "line 1: a sha256:"},
		{name: "one field", file: "# x\nadmin\n", wantErr: "line 2: want ROLE TOKEN"},
		{name: "four fields", file: "admin " + adminToken + " name extra\n", wantErr: "line 1: want ROLE TOKEN [NAME]"},
		{name: "bad name", file: "admin " + adminToken + " bad/name\n", wantErr: "line 1: a token's name is up to 64"},
		{name: "short token", file: "read tiny-tok\n", wantErr: "line 1: token shorter than 16"},
		{name: "duplicate", file: "read " + readToken + "\nadmin sha256:" + sha256Hex(readToken) + "\n", wantErr: "line 2: the same token as line 1"},
		{name: "empty", file: "# nothing\n\n", wantErr: "no tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tokens, err := server.ParseTokens(strings.NewReader(tc.file))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if tokens.Len() != tc.want {
					t.Fatalf("Len = %d, want %d", tokens.Len(), tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			// An error names the line, never the secret on it.
			for _, tok := range []string{readToken, adminToken, sendToken, "tiny-tok", "zzzz"} {
				if strings.Contains(err.Error(), tok) {
					t.Errorf("error %q repeats the token", err)
				}
			}
		})
	}
}

func TestLoadTokensFileNamesFile(t *testing.T) {
	path := t.TempDir() + "/tokens"
	if _, err := server.LoadTokensFile(path); err == nil {
		t.Fatal("missing file: no error")
	}
}

// TestRequiredRoleCoversEveryMethod keeps the role table in step with the
// protos: every ibmail.v1 method must be listed, so that none falls to the
// admin default by oversight.
func TestRequiredRoleCoversEveryMethod(t *testing.T) {
	_ = ibmailv1.File_ibmail_v1_classifier_service_proto // make sure the package is registered
	want := map[string]server.Role{
		"/ibmail.v1.DeliveryReportService/IngestDeliveryReports":    server.RoleNone,
		"/ibmail.v1.DeliveryReportService/ListDeliveryReports":      server.RoleRead,
		"/ibmail.v1.EventService/WatchEvents":                       server.RoleRead,
		"/ibmail.v1.SendService/CreateSend":                         server.RoleSend,
		"/ibmail.v1.SuppressionService/DeleteSuppression":           server.RoleAdmin,
		"/grpc.health.v1.Health/Check":                              server.RoleNone,
		"/grpc.health.v1.Health/Watch":                              server.RoleNone,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": server.RoleNone,
		"/ibmail.v1.NewService/Unknown":                             server.RoleAdmin,
	}
	for m, r := range want {
		if got := server.RequiredRole(m); got != r {
			t.Errorf("RequiredRole(%s) = %v, want %v", m, got, r)
		}
	}
	table := server.MethodRoles()
	n := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("ibmail.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				full := "/" + string(sd.FullName()) + "/" + string(sd.Methods().Get(j).Name())
				n++
				if _, ok := table[full]; !ok {
					t.Errorf("%s is missing from the role table", full)
				}
			}
		}
		return true
	})
	if n == 0 {
		t.Fatal("no ibmail.v1 methods found")
	}
}

// TestAuthRESTHeaders checks the headers HTTP clients act on: the right
// WWW-Authenticate challenge for callers and for the webhook, and
// Retry-After on 429.
func TestAuthRESTHeaders(t *testing.T) {
	env := newAuthEnv(t, testTokens(t), 1)
	get := func(path string, mutate ...func(*http.Request)) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, env.rest.URL+path, nil)
		for _, m := range mutate {
			m(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	tests := []struct {
		name       string
		resp       func() *http.Response
		wantStatus int
		header     string
		want       string
	}{
		{"caller without token", func() *http.Response { return get("/v1/deliveryReports") }, http.StatusUnauthorized, "WWW-Authenticate", `Bearer realm="ibmail"`},
		{"webhook without secret", func() *http.Response {
			resp, err := http.Post(env.rest.URL+server.WebhookPath, "application/json", strings.NewReader(`{"results":[]}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}, http.StatusUnauthorized, "WWW-Authenticate", `Basic realm="ibmail webhook"`},
		{"first call within budget", func() *http.Response { return get("/v1/deliveryReports", bearer(readToken)) }, http.StatusOK, "Retry-After", ""},
		{"second call over budget", func() *http.Response { return get("/v1/deliveryReports", bearer(readToken)) }, http.StatusTooManyRequests, "Retry-After", "1"},
	}
	for _, tt := range tests {
		resp := tt.resp()
		if resp.StatusCode != tt.wantStatus || resp.Header.Get(tt.header) != tt.want {
			t.Errorf("%s: %d, %s %q; want %d, %q", tt.name, resp.StatusCode, tt.header, resp.Header.Get(tt.header), tt.wantStatus, tt.want)
		}
	}
}

// GetCaller tells each token its own role, so that a client offers only
// what the token may do; without tokens the caller is an anonymous admin.
func TestGetCaller(t *testing.T) {
	env := newAuthEnv(t, testTokens(t), 1000).testEnv
	open := newTestEnv(t)
	tests := []struct {
		name     string
		env      *testEnv
		token    string
		wantCode int
		want     string
	}{
		{"read", env, readToken, 200, `"role":"CALLER_ROLE_READ"`},
		{"send", env, sendToken, 200, `"role":"CALLER_ROLE_SEND"`},
		{"admin", env, adminToken, 200, `"role":"CALLER_ROLE_ADMIN"`},
		{"no token", env, "", 401, "TOKEN_MISSING"},
		{"wrong token", env, wrongToken, 401, "TOKEN_INVALID"},
		{"no tokens configured", open, "", 200, `"name":"anonymous","role":"CALLER_ROLE_ADMIN","tokensRequired":false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, resp := tt.env.do(t, http.MethodGet, "/v1/caller", "", nil, bearer(tt.token))
			if got := toJSON(resp); code != tt.wantCode || !strings.Contains(got, tt.want) {
				t.Errorf("GET /v1/caller = %d %s, want %d with %s", code, got, tt.wantCode, tt.want)
			}
		})
	}
}
