package server_test

import (
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/ibmail/ibmail/server"
)

// TestInprocRESTCallPassesTheServerOnce: a REST call reaches its service in
// process with one server span (no client span beside it) in the HTTP
// request's trace, and one "rpc" log line from the interceptors.
func TestInprocRESTCallPassesTheServerOnce(t *testing.T) {
	rec := recordSpans(t)

	env := newTestEnv(t)
	tests := []struct {
		name, method, path, rpc string
		body                    string
		wantCode                int
	}{
		{name: "classify", method: http.MethodPost, path: "/v1/reports:classify", rpc: "ibmail.v1.ClassifierService/ClassifyReport",
			body: report("m-1", "a@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"), wantCode: http.StatusOK},
		{name: "webhook", method: http.MethodPost, path: "/v1/webhooks/infobip/delivery-reports?token=" + testSecret,
			rpc: "ibmail.v1.DeliveryReportService/IngestDeliveryReports", body: body(report("m-2", "b@example.com", 0, "NO_ERROR", 0, "OK")), wantCode: http.StatusOK},
		{name: "not found", method: http.MethodGet, path: "/v1/sends/00000000-0000-0000-0000-000000000000",
			rpc: "ibmail.v1.SendService/GetSend", wantCode: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.Reset()
			logsBefore := strings.Count(env.logs.String(), `"method":"/`+tt.rpc+`"`)
			ct := ""
			if tt.body != "" {
				ct = "application/json"
			}
			if code, got := env.do(t, tt.method, tt.path, ct, []byte(tt.body)); code != tt.wantCode {
				t.Fatalf("%s %s: %d %v, want %d", tt.method, tt.path, code, got, tt.wantCode)
			}
			var rpcSpans []sdktrace.ReadOnlySpan
			var httpSpan sdktrace.ReadOnlySpan
			for _, s := range rec.Ended() {
				switch {
				case s.Name() == tt.rpc:
					rpcSpans = append(rpcSpans, s)
				case s.SpanKind() == trace.SpanKindServer && strings.HasPrefix(s.Name(), tt.method+" "):
					httpSpan = s
				}
			}
			if len(rpcSpans) != 1 || httpSpan == nil {
				t.Fatalf("%d spans of %s and HTTP span %v; want one of each", len(rpcSpans), tt.rpc, httpSpan)
			}
			if s := rpcSpans[0]; s.SpanKind() != trace.SpanKindServer || s.Parent().SpanID() != httpSpan.SpanContext().SpanID() {
				t.Errorf("the %s span is %v with parent %v; want a server span under the HTTP span", tt.rpc, s.SpanKind(), s.Parent().SpanID())
			}
			if n := strings.Count(env.logs.String(), `"method":"/`+tt.rpc+`"`) - logsBefore; n != 1 {
				t.Errorf("%d log lines for %s, want 1", n, tt.rpc)
			}
		})
	}
}

// TestInprocGuardRefusesBadMetadataFirst: a call whose metadata cannot be
// built (a bad Grpc-Timeout) is refused as before, ahead of its body's
// limit, though the guard builds no metadata for calls that need no token.
func TestInprocGuardRefusesBadMetadataFirst(t *testing.T) {
	env := newTestEnv(t, withServerOptions(func(o *server.Options) { o.MaxAPIBodyBytes = 1 << 10 }))
	big := []byte(`{"report":{"messageId":"` + strings.Repeat("x", 2<<10) + `"}}`)
	tests := []struct {
		name     string
		header   string
		value    string
		body     []byte
		wantCode int
	}{
		{name: "bad timeout, body over the limit", header: "Grpc-Timeout", value: "soon", body: big, wantCode: http.StatusBadRequest},
		// The gateway drops what it cannot forward: the limit answers.
		{name: "bad binary header, body over the limit", header: "Grpc-Metadata-X-Bin", value: "%%%", body: big, wantCode: http.StatusRequestEntityTooLarge},
		{name: "good timeout, body over the limit", header: "Grpc-Timeout", value: "5S", body: big, wantCode: http.StatusRequestEntityTooLarge},
		{name: "good timeout", header: "Grpc-Timeout", value: "5S", body: []byte(report("m-1", "a@example.com", 0, "NO_ERROR", 0, "OK")), wantCode: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, got := env.do(t, http.MethodPost, "/v1/reports:classify", "application/json", tt.body,
				func(r *http.Request) { r.Header.Set(tt.header, tt.value) })
			if code != tt.wantCode {
				t.Fatalf("%s: %s: %d %v, want %d", tt.header, tt.value, code, got, tt.wantCode)
			}
		})
	}
}
