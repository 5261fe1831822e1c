// Command ibmaild serves the ibmail gRPC API and its REST gateway, including
// the webhook that Infobip posts delivery reports to.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ibmail/ibmail/buildinfo"
	"github.com/ibmail/ibmail/cmd/internal/envflag"
	"github.com/ibmail/ibmail/events"
	"github.com/ibmail/ibmail/server"
)

func main() {
	var cfg config
	fs := flag.NewFlagSet("ibmaild", flag.ContinueOnError)
	s := envflag.New(fs, nil)
	s.String(&cfg.grpcAddr, "grpc-addr", "IBMAIL_GRPC_ADDR", "127.0.0.1:9090", "gRPC listen address", envflag.HostPort)
	s.String(&cfg.httpAddr, "http-addr", "IBMAIL_HTTP_ADDR", "127.0.0.1:8080", "REST and webhook listen address", envflag.HostPort)
	s.String(&cfg.dataDir, "data-dir", "IBMAIL_DATA_DIR", "data", "directory of the embedded SQLite store and generated secrets", envflag.Path)
	s.Secret(&cfg.webhookSecret, "webhook-secret", "IBMAIL_WEBHOOK_SECRET", "server-wide secret the webhooks accept, overriding the stored one, 12 to 1024 printable characters without spaces; empty: the one kept in the store for every replica, imported from <data-dir>/webhook-secret or generated there on the store's first start", checkSecret)
	s.String(&cfg.rulesFile, "rules-file", "IBMAIL_RULES_FILE", "", "YAML rules file replacing the built-in bounce mapping; it is then the authority and PUT /v1/rules is refused", envflag.Path)
	s.Int64(&cfg.maxBodyBytes, "max-body-bytes", "IBMAIL_MAX_BODY_BYTES", 16<<20, "largest REST request body accepted, 1024 to 1073741824", envflag.Between[int64](minBodyBytes, maxBodyBytes))
	s.Duration(&cfg.shutdownGrace, "shutdown-grace", "IBMAIL_SHUTDOWN_GRACE", 15*time.Second, "how long requests in flight may take to finish on SIGTERM", envflag.Positive(time.Hour))
	s.String(&cfg.logLevel, "log-level", "IBMAIL_LOG_LEVEL", "info", "debug, info, warn or error", checkLogLevel)
	s.String(&cfg.publicURL, "public-url", "IBMAIL_PUBLIC_URL", "", "base URL Infobip reaches this server's REST listener at, for each send's notifyUrl; empty: http:// and the HTTP listen address", envflag.BaseURL("https", "http"))
	s.List((*[]string)(&cfg.allowBaseURLs), "allow-base-url", "IBMAIL_ALLOW_BASE_URLS", "admit this origin (scheme://host:port) as a connection base URL besides https://*.api.infobip.com, e.g. a standalone sandbox; repeatable (env comma-separated)", envflag.Origin("https", "http"))
	s.Bool(&cfg.sandbox, "sandbox", "IBMAIL_SANDBOX", false, "run an in-process Infobip sandbox with a ready connection and sender account, both with id sandbox")
	s.String(&cfg.encryptionKeyFile, "encryption-key-file", "IBMAIL_ENCRYPTION_KEY_FILE", "", "file holding the AES-256 key that seals stored API keys (64 hex digits or base64); empty: IBMAIL_ENCRYPTION_KEY, else <data-dir>/encryption-key, created on first start", envflag.Path)
	s.String(&cfg.previousEncryptionKeyFile, "previous-encryption-key-file", "IBMAIL_PREVIOUS_ENCRYPTION_KEY_FILE", "", "file holding the encryption key being rotated out: the stored secrets sealed under it are re-sealed under the current key at start, after which it is no longer needed; also IBMAIL_PREVIOUS_ENCRYPTION_KEY", envflag.Path)
	s.Int(&cfg.sendRate, "send-rate", "IBMAIL_SEND_RATE", 100, "requests per second to Infobip per connection that sets no rate of its own, shared by all replicas, 1 to 100000; Infobip allows 2000", envflag.Between(1, 100_000))
	s.Int(&cfg.sendConcurrency, "send-concurrency", "IBMAIL_SEND_CONCURRENCY", 4, "Infobip requests in flight at once per connection, 1 to 1000", envflag.Between(1, 1000))
	s.Int(&cfg.dispatchWorkers, "dispatch-workers", "IBMAIL_DISPATCH_WORKERS", 16, "batches this server dispatches at once, over all connections, 1 to 10000", envflag.Between(1, 10_000))
	s.Duration(&cfg.dispatchLease, "dispatch-lease", "IBMAIL_DISPATCH_LEASE", 2*time.Minute, "how long a claimed batch stays this server's before another may take it over, 1s to 24h", envflag.Between(time.Second, 24*time.Hour))
	s.String(&cfg.db, "db", "IBMAIL_DB", "", "store: a postgres:// URL for PostgreSQL, shared by replicas; empty: the embedded SQLite in the data dir", checkDB)
	s.String(&cfg.replicaID, "replica-id", "IBMAIL_REPLICA_ID", "", "this replica's name in dispatch leases, unique among replicas sharing a store, at most 200 characters without spaces; empty: generated once into <data-dir>/replica-id", envflag.Printable(200))
	s.String(&cfg.natsURL, "nats-url", "IBMAIL_NATS_URL", "", "NATS server URL(s), comma-separated: publish every event to the JetStream stream IBMAIL_EVENTS, created if missing, on ibmail.events.<event name>; empty: no publishing", checkNATSURLs)
	s.String(&cfg.natsStream, "nats-stream", "IBMAIL_NATS_STREAM", events.DefaultStream, "the JetStream stream events are published to, created if missing", checkStreamName)
	s.String(&cfg.natsSubjectPrefix, "nats-subject-prefix", "IBMAIL_NATS_SUBJECT_PREFIX", events.DefaultSubjectPrefix, "events go out on <prefix>.<event name>", checkSubjectPrefix)
	s.String(&cfg.tokensFile, "tokens-file", "IBMAIL_TOKENS_FILE", "", "file of ROLE TOKEN lines (role read, send or admin; token as is or sha256:<hex digest>) that callers must present as \"authorization: Bearer <token>\"; empty: no caller auth, allowed only on loopback listeners", envflag.Path)
	s.Float64(&cfg.tokenRate, "token-rate", "IBMAIL_TOKEN_RATE", server.DefaultTokenRate, "requests per second each caller token may make, above 0, at most 1000000; more get RESOURCE_EXHAUSTED (HTTP 429)", envflag.Positive(1e6))
	s.String(&cfg.tlsCert, "tls-cert", "IBMAIL_TLS_CERT", "", "PEM certificate (chain) for TLS on both listeners; with --tls-key", envflag.Path)
	s.String(&cfg.tlsKey, "tls-key", "IBMAIL_TLS_KEY", "", "PEM private key for --tls-cert", envflag.Path)
	s.String(&cfg.otlpEndpoint, "otlp-endpoint", "IBMAIL_OTLP_ENDPOINT", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTLP/gRPC collector URL (such as http://127.0.0.1:4317) for OpenTelemetry traces of gRPC, REST and Infobip calls; empty: tracing off (or env OTEL_EXPORTER_OTLP_ENDPOINT)", envflag.BaseURL("http", "https"))
	// Transport limits (see server.TransportLimits).
	s.Int64(&cfg.maxAPIBodyBytes, "max-api-body-bytes", "IBMAIL_MAX_API_BODY_BYTES", server.DefaultMaxAPIBodyBytes, "largest body of a REST call other than the webhook, such as a send of 100,000 recipients, 1024 to 1073741824; gRPC messages are bounded by the larger of this and --max-body-bytes", envflag.Between[int64](minBodyBytes, maxBodyBytes))
	s.Duration(&cfg.limits.ReadHeaderTimeout, "read-header-timeout", "IBMAIL_READ_HEADER_TIMEOUT", server.DefaultReadHeaderTimeout, "longest wait for a request's headers, and for the first bytes of its body, 100ms to 10m", envflag.Between(100*time.Millisecond, 10*time.Minute))
	s.Int64(&cfg.limits.BodyMinRate, "body-min-rate", "IBMAIL_BODY_MIN_RATE", server.DefaultBodyMinRate, "slowest rate in bytes per second at which a request body must keep arriving, 1 to 1073741824; slower clients are cut off with 408", envflag.Between[int64](1, 1<<30))
	s.Duration(&cfg.limits.BodyTimeout, "body-timeout", "IBMAIL_BODY_TIMEOUT", server.DefaultBodyTimeout, "longest any request body may take, 1s to 1h", envflag.Between(time.Second, time.Hour))
	s.Duration(&cfg.limits.IdleTimeout, "idle-timeout", "IBMAIL_IDLE_TIMEOUT", server.DefaultIdleTimeout, "close REST keep-alive connections and gRPC connections without calls idle this long, 1s to 24h", envflag.Between(time.Second, 24*time.Hour))
	s.Int(&cfg.limits.MaxConnections, "max-connections", "IBMAIL_MAX_CONNECTIONS", server.DefaultMaxConnections, "most open connections on each listener, 1 to 1000000; more wait until one closes", envflag.Between(1, 1_000_000))
	s.Float64(&cfg.pauseBounceRate, "pause-bounce-rate", "IBMAIL_PAUSE_BOUNCE_RATE", 0, "pause a sending domain whose own bounce rate over the last hour or 24 hours reaches this PERCENT, above 0, at most 100, before Infobip blocks it at 5; its batches wait until POST /v1/sendingDomains/{domain}:unblock; 0: off", envflag.Between(0.0, 100.0))
	s.Int64(&cfg.pauseMinReports, "pause-bounce-min-reports", "IBMAIL_PAUSE_BOUNCE_MIN_REPORTS", server.DefaultPauseMinReports, "reports a window must count before --pause-bounce-rate judges it, 1 to 1000000000", envflag.Between[int64](1, 1_000_000_000))
	showVersion := fs.Bool("version", false, "print the version and exit")
	err := s.Parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if *showVersion {
		fmt.Println("ibmaild", buildinfo.Read())
		return
	}
	err = errors.Join(err, cfg.check(s), envErrors())
	if err != nil {
		fmt.Fprintf(os.Stderr, "ibmaild: refusing to start:\n%v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "ibmaild:", err)
		os.Exit(1)
	}
}
