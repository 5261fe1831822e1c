// Package server implements the ibmail.v1 gRPC services and their REST
// gateway, including the webhook Infobip posts delivery reports to.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"

	"github.com/ibmail/ibmail/apidocs"
	"github.com/ibmail/ibmail/buildinfo"
	"github.com/ibmail/ibmail/classifier"
	"github.com/ibmail/ibmail/console"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/metrics"
	"github.com/ibmail/ibmail/rules"
	"github.com/ibmail/ibmail/store"
)

// DefaultMaxBodyBytes bounds a REST body: Infobip's largest report buckets
// (2000 reports) stay well below it.
const DefaultMaxBodyBytes = 16 << 20

// Options configure a Server.
type Options struct {
	Store store.Store
	// Engine holds the rules in force until a version is stored through
	// the RuleService, which then takes over on every replica; with
	// RulesFromFile it is in force for good.
	Engine *classifier.Engine
	// RulesFromFile says Engine came from --rules-file, which is then the
	// authority: the RuleService refuses to change rules.
	RulesFromFile bool
	// RulesPoll is how often the server looks for a rules version stored
	// by another replica; 0 means rules.DefaultPoll.
	RulesPoll time.Duration
	// OperationLease is how long a replica's hold on a long-running
	// operation (a reclassification) lasts without renewal, after which
	// another replica takes the job over; 0 means DefaultOperationLease.
	OperationLease time.Duration
	// OperationPoll is how often the server looks for operations no replica
	// works on; 0 means DefaultOperationPoll.
	OperationPoll time.Duration
	// OperationStepDone, when not nil, is called after each step of an
	// operation this server committed; an error stops the server's worker
	// there, keeping its lease, as if the process had died. For tests of
	// a restart in the middle of a job.
	OperationStepDone func(operation int64, step int) error
	// WebhookSecret is the server-wide webhook secret; optional, since each
	// connection has its own.
	WebhookSecret string
	// Vault seals connections' credentials.
	Vault *Vault
	// BaseURLs decides which base URLs connections may have.
	BaseURLs BaseURLPolicy
	// PublicURL is the server's REST base as Infobip reaches it, for the
	// notifyUrl of every send, such as https://ibmail.example.com.
	PublicURL string
	// Tester checks connections against Infobip.
	Tester ConnectionTester
	// WakeDispatcher, when set, is called after a send is stored.
	WakeDispatcher func()
	Logger         *slog.Logger
	// EventsChanged, when set, returns a channel closed when the event log
	// may have grown (events.Sequencer.Changed), so that WatchEvents
	// streams new events at once rather than at its next poll.
	EventsChanged func() <-chan struct{}
	// MaxBodyBytes bounds REST request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Tokens are the caller tokens every RPC but the webhook, health and
	// reflection requires (see RequiredRole); nil or empty: no caller auth,
	// which cmd/ibmaild allows only on loopback listeners.
	Tokens *Tokens
	// TokenRate is the requests per second each token may make; 0 means
	// DefaultTokenRate.
	TokenRate float64
	// MaxAPIBodyBytes bounds the bodies of every REST route but the
	// webhook; 0 means DefaultMaxAPIBodyBytes.
	MaxAPIBodyBytes int64
	// Limits bound connections, headers and slow bodies on both listeners.
	Limits TransportLimits
	// PauseBounceRate, when above 0, pauses a sending domain whose own
	// bounce rate reaches it (percent; see BouncePauser), judged on
	// windows of at least PauseMinReports reports (0: the default) every
	// PauseCheckEvery (0: the default).
	PauseBounceRate float64
	PauseMinReports int64
	PauseCheckEvery time.Duration
}

// Server holds the gRPC server, the gateway that calls it in-process and
// the health service both report through.
type Server struct {
	grpc     *grpc.Server
	health   *health.Server
	internal *bufconn.Listener
	conn     *grpc.ClientConn
	// gatewayConn carries the gateway's calls to the services in process,
	// through the same tap, stats handler and interceptors (see inprocConn).
	gatewayConn *inprocConn
	limits      TransportLimits
	// draining is set once shutdown began: /healthz then answers 503.
	draining atomic.Bool
	closed   chan struct{}
	closeMu  sync.Once
	http     http.Handler
	log      *slog.Logger
	probe    *storeProbe
	// internalToken is the admin token of InternalContext.
	internalToken string
	// gateway serves REST; its error writer serves the routes beside it.
	gateway *gateway
}

// New builds a Server; call Serve to run it and Close when done.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Store == nil || opts.Engine == nil || opts.Vault == nil || opts.Tester == nil {
		return nil, errors.New("server: Store, Engine, Vault and Tester are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxAPIBodyBytes <= 0 {
		opts.MaxAPIBodyBytes = DefaultMaxAPIBodyBytes
	}
	opts.Limits = opts.Limits.withDefaults()
	// A call's binary form is smaller than its JSON, so the largest body
	// REST admits fits; gRPC callers get no more.
	maxMsg := int(max(opts.MaxBodyBytes, opts.MaxAPIBodyBytes))
	// The token check runs as a call's headers arrive (InTapHandle), before
	// its message is read; it logs and counts what it refuses.
	auth, internalToken := newTokenAuth(opts.Tokens, opts.TokenRate, opts.Logger)
	// Tracing follows the global OpenTelemetry provider: a no-op unless
	// tracing.Setup configured an exporter. The stats handler and the
	// interceptor chain are built once, for the gRPC server and the
	// gateway's in-process connection alike.
	statsHandler := otelgrpc.NewServerHandler()
	unary := chainUnary(logInterceptor(opts.Logger), recoverInterceptor(opts.Logger), errorCodeInterceptor)
	gatewayConn := &inprocConn{
		unary: unary,
		stats: statsHandler,
		tap:   auth.tap,
		calls: make(chan struct{}, opts.Limits.GRPCMaxConcurrentStreams),
		log:   opts.Logger,
	}
	s := &Server{
		grpc: grpc.NewServer(
			grpc.StatsHandler(statsHandler),
			grpc.MaxRecvMsgSize(maxMsg),
			grpc.InTapHandle(auth.tap),
			grpc.MaxConcurrentStreams(opts.Limits.GRPCMaxConcurrentStreams),
			grpc.ConnectionTimeout(opts.Limits.ReadHeaderTimeout),
			grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: opts.Limits.IdleTimeout, Time: time.Minute, Timeout: 20 * time.Second}),
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
			grpc.UnaryInterceptor(unary),
			grpc.ChainStreamInterceptor(recoverStreamInterceptor(opts.Logger), errorCodeStreamInterceptor),
		),
		health:        health.NewServer(),
		internal:      bufconn.Listen(1 << 20),
		gatewayConn:   gatewayConn,
		limits:        opts.Limits,
		log:           opts.Logger,
		probe:         &storeProbe{store: opts.Store, log: opts.Logger, verifyKey: opts.Vault.Verify},
		closed:        make(chan struct{}),
		internalToken: internalToken,
	}
	if opts.Vault.boundStore() == nil {
		if err := opts.Vault.Bind(ctx, opts.Store, "the server's options", nil, opts.Logger); err != nil {
			return nil, err
		}
	}
	bookOpts := rules.Options{Store: opts.Store, Default: opts.Engine, Poll: opts.RulesPoll, Logger: opts.Logger}
	if opts.RulesFromFile {
		bookOpts.File = opts.Engine
	}
	book, err := rules.New(ctx, bookOpts)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	serverSecret := NewServerWebhookSecret(opts.Store, opts.Vault)
	webhookAuth := NewWebhookSecrets(opts.WebhookSecret, serverSecret, opts.Store)
	// Each service is registered on the gRPC server and for the gateway's
	// in-process connection at once.
	services := serviceRegistrar{server: s.grpc, inproc: gatewayConn}
	ibmailv1.RegisterClassifierServiceServer(services, NewClassifierService(book))
	worker := newReclassifier(opts.Store, book, opts.OperationLease, opts.OperationPoll, opts.Logger)
	worker.stepDone = opts.OperationStepDone
	reports := NewDeliveryReportService(book, opts.Store, webhookAuth, opts.Logger)
	reports.ops = Operations{worker: worker, caller: auth.callerName}
	ibmailv1.RegisterDeliveryReportServiceServer(services, reports)
	ibmailv1.RegisterOperationServiceServer(services, NewOperationService(opts.Store, opts.Logger))
	ibmailv1.RegisterAccessServiceServer(services, &AccessService{auth: auth})
	ibmailv1.RegisterRuleServiceServer(services, NewRuleService(book, opts.Store, auth.callerName, opts.Logger))
	ibmailv1.RegisterProfileServiceServer(services, NewProfileService(opts.Store, opts.Logger))
	connections := NewConnectionService(opts.Store, opts.Vault, opts.BaseURLs, WebhookURL(opts.PublicURL), opts.Tester, opts.Logger)
	if opts.WebhookSecret == "" {
		connections.withServerSecret(serverSecret)
	}
	ibmailv1.RegisterConnectionServiceServer(services, connections)
	ibmailv1.RegisterSenderServiceServer(services, NewSenderService(opts.Store, opts.Logger))
	ibmailv1.RegisterSendServiceServer(services, NewSendService(opts.Store, opts.WakeDispatcher, opts.Logger))
	ibmailv1.RegisterSuppressionServiceServer(services, NewSuppressionService(opts.Store, book, opts.Logger))
	ibmailv1.RegisterSendingDomainServiceServer(services, NewSendingDomainService(opts.Store, opts.WakeDispatcher, opts.Logger))
	ibmailv1.RegisterEventServiceServer(services, NewEventService(opts.Store, opts.EventsChanged, ctx.Done(), opts.Logger))
	healthpb.RegisterHealthServer(services, s.health)
	reflection.Register(s.grpc)
	go s.grpc.Serve(s.internal) //nolint:errcheck // ends with Stop, reported by Serve of the public listener

	conn, err := grpc.NewClient("passthrough:///ibmail-internal",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.internal.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxMsg), grpc.MaxCallRecvMsgSize(maxMsg)),
	)
	if err != nil {
		s.grpc.Stop()
		return nil, fmt.Errorf("server: in-process connection: %w", err)
	}
	s.conn = conn
	gw, err := newGateway(ctx, gatewayConn, &gateway{store: opts.Store, auth: webhookAuth, tokens: auth,
		maxBodyBytes: opts.MaxBodyBytes, maxAPIBodyBytes: opts.MaxAPIBodyBytes, log: opts.Logger})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("server: gateway: %w", err)
	}
	mux := http.NewServeMux()
	s.gateway = gw
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET "+SuppressionExportPath, s.serveSuppressionExport)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	mux.Handle("GET /metrics", metrics.Handler(metrics.NewBacklogCollector(s.probe), metrics.NewDomainCollector(opts.Store)))
	apidocs.Register(mux)
	mux.Handle("GET /console/", console.Handler())
	mux.Handle("GET /console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
	mux.Handle("/", gw)
	logged := accessLog(opts.Logger, mux)
	s.http = bodyDeadlines(opts.Limits, whenTelemetry(otelhttp.NewHandler(logged, "ibmail.http",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + routeFamily(r.URL.Path) })), logged))
	go s.followStore(ctx)
	go book.Run(s.untilClosed(ctx))
	go worker.Run(s.untilClosed(ctx))
	go s.pruneDomainCounts(ctx, opts.Store)
	if opts.PauseBounceRate > 0 {
		go NewBouncePauser(opts.Store, opts.PauseBounceRate, opts.PauseMinReports, opts.PauseCheckEvery, opts.Logger).Run(s.untilClosed(ctx))
	}
	return s, nil
}

// untilClosed is ctx, also ended when the server is closed: for the loops
// the server runs in the background.
func (s *Server) untilClosed(ctx context.Context) context.Context {
	ctx, stop := context.WithCancel(ctx)
	go func() {
		defer stop()
		select {
		case <-s.closed:
		case <-ctx.Done():
		}
	}()
	return ctx
}

// ClientConn is an in-process client connection to the server's services,
// passing the same interceptors as remote calls: with tokens configured,
// call with InternalContext.
func (s *Server) ClientConn() *grpc.ClientConn { return s.conn }

// GRPCServer is the gRPC server, for serving on more listeners.
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// Handler is the REST handler: the gateway, the webhook and /healthz.
func (s *Server) Handler() http.Handler { return s.http }

// Serve serves gRPC on grpcLis and REST on httpLis until ctx ends, then
// shuts down gracefully: requests in flight finish within grace.
func (s *Server) Serve(ctx context.Context, grpcLis, httpLis net.Listener, grace time.Duration) error {
	// Bodies are bounded by bodyDeadlines, not by ReadTimeout, which would
	// give a large webhook body no more time than a small one.
	httpSrv := &http.Server{
		Handler:           s.http,
		ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
		IdleTimeout:       s.limits.IdleTimeout,
		MaxHeaderBytes:    s.limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	grpcLis = netutil.LimitListener(grpcLis, s.limits.MaxConnections)
	httpLis = netutil.LimitListener(httpLis, s.limits.MaxConnections)
	errc := make(chan error, 2)
	go func() { errc <- s.grpc.Serve(grpcLis) }()
	go func() { errc <- httpSrv.Serve(httpLis) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.draining.Store(true)
	s.health.Shutdown()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if herr := httpSrv.Shutdown(shutdownCtx); herr != nil && err == nil {
		err = herr
	}
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-shutdownCtx.Done():
		s.grpc.Stop()
	}
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}

// Close stops the server at once and releases the in-process connection.
func (s *Server) Close() {
	s.closeMu.Do(func() { close(s.closed) })
	s.draining.Store(true)
	if s.conn != nil {
		s.conn.Close()
	}
	if s.gatewayConn != nil {
		s.gatewayConn.Close()
	}
	s.grpc.Stop()
}

// followStore keeps the gRPC health of the server ("") and of each
// ibmail.v1 service it serves at SERVING while the store answers and
// NOT_SERVING while it does not, as /readyz says: gRPC load balancers and
// probes then steer calls away from a replica that cannot do them. The
// names are read from the services registered, so a new one is covered.
func (s *Server) followStore(ctx context.Context) {
	names := []string{""}
	for name := range s.grpc.GetServiceInfo() {
		if strings.HasPrefix(name, "ibmail.v1.") {
			names = append(names, name)
		}
	}
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	// Every name starts SERVING, as the health server does for ""; the
	// first probe is a tick later.
	last := healthpb.HealthCheckResponse_SERVING
	for _, n := range names {
		s.health.SetServingStatus(n, last)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closed:
			return
		case <-tick.C:
		}
		st := healthpb.HealthCheckResponse_SERVING
		if err := s.probe.Ping(ctx); err != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if st != last {
			// After Shutdown, the health server ignores these.
			for _, n := range names {
				s.health.SetServingStatus(n, st)
			}
			last = st
		}
	}
}

// serveHealthz is liveness: 200 until shutdown begins, through store
// outages (which gRPC health and /readyz report). The body also says which
// build answers, so that an operator can tell replicas apart mid-rollout.
func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	status, code := "ok", http.StatusOK
	if s.draining.Load() {
		status, code = "not serving", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(healthzBody{Status: status, Info: buildinfo.Read()})
}

// healthzBody is what /healthz answers: {"status":"ok","version":...}.
type healthzBody struct {
	Status string `json:"status"`
	buildinfo.Info
}

// serveReadyz answers 200 only while the store answers: a load balancer
// then sends webhooks to replicas that can keep them, whereas /healthz
// stays 200 through a store outage so that the process is not restarted
// for what a restart cannot fix.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	if err := s.probe.Ping(r.Context()); err != nil {
		msg := "store unavailable"
		if errors.Is(err, errKeyRetired) {
			msg = "encryption key retired: the store's secrets are sealed under another key; restart with the current key"
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}
