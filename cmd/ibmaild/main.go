// Command ibmaild serves the ibmail gRPC API and its REST gateway, including
// the webhook that Infobip posts delivery reports to.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ibmail/ibmail/events"
	"github.com/ibmail/ibmail/server"
)

func main() {
	var cfg config
	fs := flag.NewFlagSet("ibmaild", flag.ExitOnError)
	fs.StringVar(&cfg.grpcAddr, "grpc-addr", envOr("IBMAIL_GRPC_ADDR", "127.0.0.1:9090"), "gRPC listen address (env IBMAIL_GRPC_ADDR)")
	fs.StringVar(&cfg.httpAddr, "http-addr", envOr("IBMAIL_HTTP_ADDR", "127.0.0.1:8080"), "REST and webhook listen address (env IBMAIL_HTTP_ADDR)")
	fs.StringVar(&cfg.dataDir, "data-dir", envOr("IBMAIL_DATA_DIR", "data"), "directory of the embedded SQLite store and generated secrets (env IBMAIL_DATA_DIR)")
	fs.StringVar(&cfg.webhookSecret, "webhook-secret", envOr("IBMAIL_WEBHOOK_SECRET", ""), "secret the delivery-report webhook requires; empty: generated once into <data-dir>/webhook-secret (env IBMAIL_WEBHOOK_SECRET)")
	fs.StringVar(&cfg.rulesFile, "rules-file", envOr("IBMAIL_RULES_FILE", ""), "YAML rules file replacing the built-in bounce mapping (env IBMAIL_RULES_FILE)")
	fs.Int64Var(&cfg.maxBodyBytes, "max-body-bytes", envInt("IBMAIL_MAX_BODY_BYTES", 16<<20), "largest REST request body accepted (env IBMAIL_MAX_BODY_BYTES)")
	fs.DurationVar(&cfg.shutdownGrace, "shutdown-grace", envDuration("IBMAIL_SHUTDOWN_GRACE", 15*time.Second), "how long requests in flight may take to finish on SIGTERM (env IBMAIL_SHUTDOWN_GRACE)")
	fs.StringVar(&cfg.logLevel, "log-level", envOr("IBMAIL_LOG_LEVEL", "info"), "debug, info, warn or error (env IBMAIL_LOG_LEVEL)")
	fs.StringVar(&cfg.publicURL, "public-url", envOr("IBMAIL_PUBLIC_URL", ""), "base URL Infobip reaches this server's REST listener at, for each send's notifyUrl; empty: http:// and the HTTP listen address (env IBMAIL_PUBLIC_URL)")
	cfg.allowBaseURLs = envList("IBMAIL_ALLOW_BASE_URLS")
	fs.Var(&cfg.allowBaseURLs, "allow-base-url", "admit this origin (scheme://host:port) as a connection base URL besides https://*.api.infobip.com, e.g. a standalone sandbox; repeatable (env IBMAIL_ALLOW_BASE_URLS, comma-separated)")
	fs.BoolVar(&cfg.sandbox, "sandbox", envBool("IBMAIL_SANDBOX"), "run an in-process Infobip sandbox with a ready connection and sender account, both with id sandbox (env IBMAIL_SANDBOX)")
	fs.StringVar(&cfg.encryptionKeyFile, "encryption-key-file", envOr("IBMAIL_ENCRYPTION_KEY_FILE", ""), "file holding the AES-256 key that seals stored API keys (64 hex digits or base64); empty: IBMAIL_ENCRYPTION_KEY, else <data-dir>/encryption-key, created on first start (env IBMAIL_ENCRYPTION_KEY_FILE)")
	fs.IntVar(&cfg.sendRate, "send-rate", int(envInt("IBMAIL_SEND_RATE", 100)), "requests per second to Infobip per connection that sets no rate of its own, shared by all replicas; Infobip allows 2000 (env IBMAIL_SEND_RATE)")
	fs.IntVar(&cfg.sendConcurrency, "send-concurrency", int(envInt("IBMAIL_SEND_CONCURRENCY", 4)), "Infobip requests in flight at once per connection (env IBMAIL_SEND_CONCURRENCY)")
	fs.IntVar(&cfg.dispatchWorkers, "dispatch-workers", int(envInt("IBMAIL_DISPATCH_WORKERS", 16)), "batches this server dispatches at once, over all connections (env IBMAIL_DISPATCH_WORKERS)")
	fs.DurationVar(&cfg.dispatchLease, "dispatch-lease", envDuration("IBMAIL_DISPATCH_LEASE", 2*time.Minute), "how long a claimed batch stays this server's before another may take it over (env IBMAIL_DISPATCH_LEASE)")
	fs.StringVar(&cfg.db, "db", envOr("IBMAIL_DB", ""), "store: a postgres:// URL for PostgreSQL, shared by replicas; empty: the embedded SQLite in the data dir (env IBMAIL_DB)")
	fs.StringVar(&cfg.replicaID, "replica-id", envOr("IBMAIL_REPLICA_ID", ""), "this replica's name in dispatch leases, unique among replicas sharing a store; empty: generated once into <data-dir>/replica-id (env IBMAIL_REPLICA_ID)")
	fs.StringVar(&cfg.natsURL, "nats-url", envOr("IBMAIL_NATS_URL", ""), "NATS server URL(s), comma-separated: publish every event to the JetStream stream IBMAIL_EVENTS, created if missing, on ibmail.events.<event name>; empty: no publishing (env IBMAIL_NATS_URL)")
	fs.StringVar(&cfg.natsStream, "nats-stream", envOr("IBMAIL_NATS_STREAM", events.DefaultStream), "the JetStream stream events are published to, created if missing (env IBMAIL_NATS_STREAM)")
	fs.StringVar(&cfg.natsSubjectPrefix, "nats-subject-prefix", envOr("IBMAIL_NATS_SUBJECT_PREFIX", events.DefaultSubjectPrefix), "events go out on <prefix>.<event name> (env IBMAIL_NATS_SUBJECT_PREFIX)")
	fs.StringVar(&cfg.tokensFile, "tokens-file", envOr("IBMAIL_TOKENS_FILE", ""), "file of ROLE TOKEN lines (role read, send or admin; token as is or sha256:<hex digest>) that callers must present as \"authorization: Bearer <token>\"; empty: no caller auth, allowed only on loopback listeners (env IBMAIL_TOKENS_FILE)")
	fs.Float64Var(&cfg.tokenRate, "token-rate", envFloat("IBMAIL_TOKEN_RATE", server.DefaultTokenRate), "requests per second each caller token may make; more get RESOURCE_EXHAUSTED (HTTP 429) (env IBMAIL_TOKEN_RATE)")
	fs.StringVar(&cfg.tlsCert, "tls-cert", envOr("IBMAIL_TLS_CERT", ""), "PEM certificate (chain) for TLS on both listeners; with --tls-key (env IBMAIL_TLS_CERT)")
	fs.StringVar(&cfg.tlsKey, "tls-key", envOr("IBMAIL_TLS_KEY", ""), "PEM private key for --tls-cert (env IBMAIL_TLS_KEY)")
	fs.StringVar(&cfg.otlpEndpoint, "otlp-endpoint", envOr("IBMAIL_OTLP_ENDPOINT", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")), "OTLP/gRPC collector URL (such as http://127.0.0.1:4317) for OpenTelemetry traces of gRPC, REST and Infobip calls; empty: tracing off (env IBMAIL_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT)")
	// Transport limits (see server.TransportLimits).
	fs.Int64Var(&cfg.maxAPIBodyBytes, "max-api-body-bytes", envInt("IBMAIL_MAX_API_BODY_BYTES", server.DefaultMaxAPIBodyBytes), "largest body of a REST call other than the webhook, such as a send of 100,000 recipients; gRPC messages are bounded by the larger of this and --max-body-bytes (env IBMAIL_MAX_API_BODY_BYTES)")
	fs.DurationVar(&cfg.limits.ReadHeaderTimeout, "read-header-timeout", envDuration("IBMAIL_READ_HEADER_TIMEOUT", server.DefaultReadHeaderTimeout), "longest wait for a request's headers, and for the first bytes of its body (env IBMAIL_READ_HEADER_TIMEOUT)")
	fs.Int64Var(&cfg.limits.BodyMinRate, "body-min-rate", envInt("IBMAIL_BODY_MIN_RATE", server.DefaultBodyMinRate), "slowest rate in bytes per second at which a request body must keep arriving; slower clients are cut off with 408 (env IBMAIL_BODY_MIN_RATE)")
	fs.DurationVar(&cfg.limits.BodyTimeout, "body-timeout", envDuration("IBMAIL_BODY_TIMEOUT", server.DefaultBodyTimeout), "longest any request body may take (env IBMAIL_BODY_TIMEOUT)")
	fs.DurationVar(&cfg.limits.IdleTimeout, "idle-timeout", envDuration("IBMAIL_IDLE_TIMEOUT", server.DefaultIdleTimeout), "close REST keep-alive connections and gRPC connections without calls idle this long (env IBMAIL_IDLE_TIMEOUT)")
	fs.IntVar(&cfg.limits.MaxConnections, "max-connections", int(envInt("IBMAIL_MAX_CONNECTIONS", server.DefaultMaxConnections)), "most open connections on each listener; more wait until one closes (env IBMAIL_MAX_CONNECTIONS)")
	fs.Parse(os.Args[1:]) //nolint:errcheck // ExitOnError

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "ibmaild:", err)
		os.Exit(1)
	}
}
