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
	fs.Parse(os.Args[1:]) //nolint:errcheck // ExitOnError

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "ibmaild:", err)
		os.Exit(1)
	}
}
