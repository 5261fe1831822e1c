package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ibmail/ibmail/metrics"
)

// logInterceptor logs each call's method, code and duration. It never logs
// requests or metadata, which carry reports, addresses and secrets. It is
// the outermost interceptor, so that a call whose panic was recovered is
// counted and logged as the Internal error it became. Streams log
// themselves (WatchEvents knows which of its ends matter).
func logInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		observeRPC(ctx, log, info.FullMethod, status.Code(err), time.Since(start))
		return resp, err
	}
}

// observeRPC counts and logs one call: by logInterceptor for the calls that
// reach a handler, and by the token checks for the calls they refuse before
// the call is read (which no interceptor sees).
func observeRPC(ctx context.Context, log *slog.Logger, method string, code codes.Code, elapsed time.Duration) {
	metrics.RPCs.WithLabelValues(method, code.String()).Inc()
	metrics.RPCLatency.WithLabelValues(method).Observe(elapsed.Seconds())
	level := slog.LevelDebug
	if code != codes.OK {
		level = slog.LevelInfo
		if code == codes.Internal || code == codes.Unavailable || code == codes.Unknown {
			level = slog.LevelError
		}
	}
	log.LogAttrs(ctx, level, "rpc", slog.String("method", method), slog.String("code", code.String()),
		slog.Duration("duration", elapsed))
}

// recoverInterceptor turns a panic into an Internal error, logging the stack
// but nothing of the request.
func recoverInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer recoverPanic(log, info.FullMethod, &err)
		return handler(ctx, req)
	}
}

// recoverStreamInterceptor is recoverInterceptor for streams.
func recoverStreamInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer recoverPanic(log, info.FullMethod, &err)
		return handler(srv, ss)
	}
}

// recoverPanic, deferred, replaces the error of a call that panicked.
func recoverPanic(log *slog.Logger, method string, err *error) {
	if p := recover(); p != nil {
		log.Error("panic in handler", slog.String("method", method), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		*err = apiError(codes.Internal, ReasonInternal, "internal error")
	}
}

// accessLog logs each HTTP request's method, path, status and duration. The
// query string is left out on purpose: it may hold the webhook token.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := slog.LevelDebug
		if rec.status >= 400 {
			level = slog.LevelInfo
		}
		if rec.status >= 500 {
			level = slog.LevelError
		}
		elapsed := time.Since(start)
		route := routeFamily(r.URL.Path)
		metrics.HTTPRequests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		metrics.HTTPLatency.WithLabelValues(route).Observe(elapsed.Seconds())
		log.LogAttrs(r.Context(), level, "http", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Duration("duration", elapsed))
	})
}

// The OpenTelemetry globals as the otel package starts them: no-ops (a
// tracer that records nothing, a meter that measures nothing, a propagator
// that carries nothing) until tracing.Setup or a test sets them.
var (
	defaultTracerProvider = otel.GetTracerProvider()
	defaultMeterProvider  = otel.GetMeterProvider()
	defaultPropagator     = otel.GetTextMapPropagator()
)

// telemetryOn tells whether any OpenTelemetry global was set. While none
// is, the instrumentation can do nothing anyone sees, and is skipped: on
// a one-report webhook body otelhttp alone was 30 allocations. The check
// is per request, so that providers set after New take effect as before.
// (The defaults are pointers, so the comparisons cannot panic.)
func telemetryOn() bool {
	return otel.GetTracerProvider() != defaultTracerProvider ||
		otel.GetMeterProvider() != defaultMeterProvider ||
		otel.GetTextMapPropagator() != defaultPropagator
}

// whenTelemetry serves through instrumented while telemetry is on, and
// through plain, the same handler without the instrumentation, otherwise.
func whenTelemetry(instrumented, plain http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if telemetryOn() {
			instrumented.ServeHTTP(w, r)
			return
		}
		plain.ServeHTTP(w, r)
	})
}

// routeFamily labels a path for metrics without ids in it, which would
// make a time series per profile.
func routeFamily(path string) string {
	if route, ok := webhookRoutes[path]; ok {
		return route.label
	}
	switch {
	case path == "/healthz":
		return "healthz"
	case path == "/readyz":
		return "readyz"
	case path == "/metrics":
		return "metrics"
	case path == "/console" || strings.HasPrefix(path, "/console/"):
		return "console"
	default:
		return "api"
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (read
// deadlines) through the recorder.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush keeps streaming responses working through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
