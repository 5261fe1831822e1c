package server_test

import (
	"net/http"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// recordSpans sets a tracer provider recording every span, and the W3C
// propagator, for the test's duration.
func recordSpans(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })
	return rec
}

// TestTracingSpansRESTAndGRPC: with a tracer provider set, a REST call
// makes an HTTP span and a gRPC span of the method it reached, in one trace.
func TestTracingSpansRESTAndGRPC(t *testing.T) {
	rec := recordSpans(t)

	env := newTestEnv(t)
	if code, got := env.do(t, http.MethodPost, "/v1/reports:classify", "application/json",
		[]byte(report("m-1", "a@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"))); code != http.StatusOK {
		t.Fatalf("classify: %d %v", code, got)
	}
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	httpSpan, okHTTP := spans["POST api"]
	grpcSpan, okGRPC := spans["ibmail.v1.ClassifierService/ClassifyReport"]
	if !okHTTP || !okGRPC {
		names := make([]string, 0, len(spans))
		for n := range spans {
			names = append(names, n)
		}
		t.Fatalf("spans %q; want an HTTP span and the gRPC server span", names)
	}
	if httpSpan.SpanContext().TraceID() != grpcSpan.SpanContext().TraceID() {
		t.Error("the gRPC span is not in the HTTP request's trace")
	}
}
