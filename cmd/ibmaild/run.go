package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/ibmail/ibmail/classifier"
	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store/sqlite"
)

// run opens the store, builds the server and serves until ctx ends.
func run(ctx context.Context, cfg config) error {
	log, err := newLogger(cfg.logLevel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	engine := classifier.Default()
	if cfg.rulesFile != "" {
		if engine, err = classifier.LoadFile(cfg.rulesFile); err != nil {
			return fmt.Errorf("rules file: %w", err)
		}
		log.Info("bounce mapping rules loaded", slog.String("file", cfg.rulesFile), slog.Int("rules", len(engine.Rules())))
	}
	secret, err := webhookSecret(cfg, log)
	if err != nil {
		return err
	}
	dbPath := filepath.Join(cfg.dataDir, "ibmail.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer st.Close()

	srv, err := server.New(ctx, server.Options{
		Store:        st,
		Engine:       engine,
		WebhookAuth:  server.NewStaticWebhookSecret(secret),
		Logger:       log,
		MaxBodyBytes: cfg.maxBodyBytes,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	grpcLis, err := net.Listen("tcp", cfg.grpcAddr)
	if err != nil {
		return fmt.Errorf("grpc listener: %w", err)
	}
	httpLis, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("http listener: %w", err)
	}
	log.Info("serving", slog.String("grpc", grpcLis.Addr().String()), slog.String("http", httpLis.Addr().String()),
		slog.String("store", dbPath))
	err = srv.Serve(ctx, grpcLis, httpLis, cfg.shutdownGrace)
	log.Info("stopped")
	return err
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// webhookSecret returns the configured secret or, when none is given, the
// one generated into the data dir on the first start (mode 0600). The
// secret itself is never logged: only where to read it.
func webhookSecret(cfg config, log *slog.Logger) (string, error) {
	if cfg.webhookSecret != "" {
		return cfg.webhookSecret, nil
	}
	path := filepath.Join(cfg.dataDir, "webhook-secret")
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	raw := make([]byte, 24)
	rand.Read(raw) //nolint:errcheck // crypto/rand.Read never fails
	secret := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	log.Info("generated a webhook secret", slog.String("file", path))
	return secret, nil
}
