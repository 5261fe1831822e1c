package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/ibmail/ibmail/classifier"
	"github.com/ibmail/ibmail/dispatch"
	"github.com/ibmail/ibmail/secret"
	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
	"github.com/ibmail/ibmail/store/sqlite"
	"github.com/ibmail/ibmail/tracing"
)

// run opens the store, builds the server and the dispatcher, and serves
// until ctx ends.
func run(ctx context.Context, cfg config) error {
	log, err := newLogger(cfg.logLevel)
	if err != nil {
		return err
	}
	stopTracing, err := tracing.Setup(ctx, cfg.otlpEndpoint, "ibmaild")
	if err != nil {
		return err
	}
	defer stopTracing(context.Background()) //nolint:errcheck // best effort at exit
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockDataDir(cfg.dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	engine := classifier.Default()
	if cfg.rulesFile != "" {
		if engine, err = classifier.LoadFile(cfg.rulesFile); err != nil {
			return fmt.Errorf("rules file: %w", err)
		}
		log.Info("bounce mapping rules loaded", slog.String("file", cfg.rulesFile), slog.Int("rules", len(engine.Rules())))
	}
	box, keySource, err := encryptionBox(cfg, log)
	if err != nil {
		return err
	}
	previousKey, err := previousEncryptionBox(cfg)
	if err != nil {
		return err
	}
	var tokens *server.Tokens
	if cfg.tokensFile != "" {
		if tokens, err = server.LoadTokensFile(cfg.tokensFile); err != nil {
			return err
		}
	}
	grpcLis, err := net.Listen("tcp", cfg.grpcAddr)
	if err != nil {
		return fmt.Errorf("grpc listener: %w", err)
	}
	defer grpcLis.Close()
	httpLis, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	defer httpLis.Close()
	if err := checkAuthExposure(tokens, grpcLis.Addr(), httpLis.Addr()); err != nil {
		return err
	}
	scheme := "http"
	if cfg.tlsCert != "" || cfg.tlsKey != "" {
		if grpcLis, httpLis, err = withTLS(cfg, grpcLis, httpLis); err != nil {
			return err
		}
		scheme = "https"
		log.Info("TLS on both listeners", slog.String("cert", cfg.tlsCert))
	}
	if tokens.Len() > 0 {
		log.Info("caller tokens loaded", slog.String("file", cfg.tokensFile), slog.Int("tokens", tokens.Len()), slog.Float64("token_rate", cfg.tokenRate))
	} else {
		log.Warn("no --tokens-file: every API call is served without authentication (loopback listeners only)")
	}
	publicURL := cfg.publicURL
	if publicURL == "" {
		publicURL = scheme + "://" + httpLis.Addr().String()
	}

	st, storeName, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer st.Close()

	owner, err := replicaID(cfg)
	if err != nil {
		return err
	}
	vault := server.NewVault(box)
	if err := vault.Bind(ctx, st, keySource, previousKey, log); err != nil {
		return fmt.Errorf("encryption key: %w", err)
	}
	webhookSecret, err := serverWebhookSecret(ctx, cfg, st, vault, log)
	if err != nil {
		return err
	}
	var sb *sandboxRun
	if cfg.sandbox {
		// The sandbox posts its platform events (a domain warned or
		// blocked) to this server's webhook, with the server-wide secret.
		platformURL := server.PlatformEventsWebhookURL(publicURL) + "?token=" + url.QueryEscape(webhookSecret)
		if sb, err = startSandbox(log, platformURL); err != nil {
			return err
		}
		defer sb.stop()
		cfg.allowBaseURLs = append(cfg.allowBaseURLs, sb.baseURL)
	}
	// Calls to Infobip join the trace of the send or test that made them.
	httpClient := &http.Client{Timeout: time.Minute, Transport: otelhttp.NewTransport(http.DefaultTransport)}
	dispatcher := dispatch.New(dispatch.Options{
		Store:    st,
		Mailers:  server.MailerSource(st, vault, publicURL, httpClient),
		Owner:    owner,
		Lease:    cfg.dispatchLease,
		Workers:  cfg.dispatchWorkers,
		Defaults: dispatch.Limits{RequestsPerSecond: cfg.sendRate, Concurrency: cfg.sendConcurrency},
		Logger:   log.With(slog.String("component", "dispatch")),
	})
	evs, err := startEvents(cfg, st, owner, log)
	if err != nil {
		return err
	}
	defer evs.close()
	srv, err := server.New(ctx, server.Options{
		Store:           st,
		Engine:          engine,
		RulesFromFile:   cfg.rulesFile != "",
		WebhookSecret:   cfg.webhookSecret,
		Vault:           vault,
		BaseURLs:        server.BaseURLPolicy{Allowed: cfg.allowBaseURLs},
		PublicURL:       publicURL,
		Tester:          server.InfobipTester{HTTPClient: httpClient},
		WakeDispatcher:  dispatcher.Wake,
		Logger:          log,
		EventsChanged:   evs.seq.Changed,
		MaxBodyBytes:    cfg.maxBodyBytes,
		Tokens:          tokens,
		TokenRate:       cfg.tokenRate,
		MaxAPIBodyBytes: cfg.maxAPIBodyBytes,
		Limits:          cfg.limits,
		PauseBounceRate: cfg.pauseBounceRate,
		PauseMinReports: cfg.pauseMinReports,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	if sb != nil {
		if err := sb.provision(srv.InternalContext(ctx), srv.ClientConn()); err != nil {
			return err
		}
	}

	var wg sync.WaitGroup
	dispatchCtx, stopDispatch := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		dispatcher.Run(dispatchCtx) //nolint:errcheck // returns nil when stopped
	}()
	evs.run(dispatchCtx, &wg)
	log.Info("serving", slog.String("grpc", grpcLis.Addr().String()), slog.String("http", httpLis.Addr().String()),
		slog.String("public_url", publicURL), slog.String("store", storeName), slog.Bool("sandbox", sb != nil),
		slog.String("platform_events_webhook", server.PlatformEventsWebhookURL(publicURL)))
	err = srv.Serve(ctx, grpcLis, httpLis, cfg.shutdownGrace)
	stopDispatch()
	wg.Wait()
	log.Info("stopped")
	return err
}

// checkAuthExposure refuses to serve without caller tokens on a listener
// other machines can reach. The resolved listener addresses are checked, not
// the flags, so that "localhost" passes and ":9090" (all interfaces) does
// not.
func checkAuthExposure(tokens *server.Tokens, addrs ...net.Addr) error {
	if tokens.Len() > 0 {
		return nil
	}
	for _, a := range addrs {
		if !isLoopback(a) {
			return fmt.Errorf("refusing to serve without caller tokens on %s, which is not a loopback address: give --tokens-file (env IBMAIL_TOKENS_FILE), or listen on 127.0.0.1 or [::1]", a)
		}
	}
	return nil
}

func isLoopback(a net.Addr) bool {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.IsLoopback()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// openStore opens PostgreSQL when --db names it, else the embedded SQLite
// in the data dir. The name it returns is safe to log: no password.
func openStore(ctx context.Context, cfg config) (store.Store, string, error) {
	if cfg.db == "" {
		path := filepath.Join(cfg.dataDir, "ibmail.db")
		st, err := sqlite.Open(ctx, path)
		return st, path, err
	}
	u, err := url.Parse(cfg.db)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, "", errors.New("--db: give a postgres:// URL, or nothing for the embedded SQLite")
	}
	st, err := postgres.Open(ctx, cfg.db)
	u.User, u.RawQuery = nil, "" // the password may sit in either
	return st, u.String(), err
}

// serverWebhookSecret makes sure the store holds the server-wide webhook
// secret, shared by every replica of the store, unless --webhook-secret
// overrides it. On the store's first start it imports
// <data-dir>/webhook-secret, so that Infobip configurations made with it
// keep working, or else generates one and writes it there (mode 0600) for
// the operator to read. The secret itself is never logged: only where to
// read it.
func serverWebhookSecret(ctx context.Context, cfg config, st store.Store, vault *server.Vault, log *slog.Logger) (string, error) {
	if cfg.webhookSecret != "" {
		return cfg.webhookSecret, nil
	}
	path := filepath.Join(cfg.dataDir, "webhook-secret")
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	fromFile := strings.TrimSpace(string(b))
	candidate := fromFile
	if candidate == "" {
		candidate = secret.Token(24)
	}
	stored, created, err := server.NewServerWebhookSecret(st, vault).Ensure(ctx, candidate)
	if err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	switch {
	case created && fromFile == "":
		if err := os.WriteFile(path, []byte(stored+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("webhook secret: %w", err)
		}
		log.Info("generated the server-wide webhook secret, kept in the store for every replica", slog.String("file", path))
	case created:
		log.Info("imported the server-wide webhook secret into the store, for every replica", slog.String("file", path))
	case fromFile != "" && fromFile != stored:
		log.Warn("this file holds another webhook secret than the store's server-wide one, which every replica uses: the file's is not accepted", slog.String("file", path))
	}
	return stored, nil
}

// encryptionBox loads the key that seals stored API keys: from
// IBMAIL_ENCRYPTION_KEY, from --encryption-key-file, or from the data dir,
// where it is created on the first start. source names where it came from,
// for messages.
func encryptionBox(cfg config, log *slog.Logger) (box *secret.Box, source string, err error) {
	if v := os.Getenv("IBMAIL_ENCRYPTION_KEY"); v != "" && cfg.encryptionKeyFile == "" {
		key, err := secret.ParseKey(v)
		if err != nil {
			return nil, "", fmt.Errorf("IBMAIL_ENCRYPTION_KEY: %w", err)
		}
		box, err := secret.NewBox(key)
		return box, "IBMAIL_ENCRYPTION_KEY", err
	}
	path := cfg.encryptionKeyFile
	if path == "" {
		path = filepath.Join(cfg.dataDir, "encryption-key")
	}
	key, created, err := secret.LoadOrCreateKeyFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("encryption key: %w", err)
	}
	if created {
		log.Info("generated the encryption key for stored API keys; back it up with the database", slog.String("file", path))
	}
	box, err = secret.NewBox(key)
	return box, "file " + path, err
}

// previousEncryptionBox loads the key a rotation replaces, if one is given:
// from IBMAIL_PREVIOUS_ENCRYPTION_KEY or --previous-encryption-key-file.
func previousEncryptionBox(cfg config) (*server.KeySource, error) {
	raw, source := os.Getenv("IBMAIL_PREVIOUS_ENCRYPTION_KEY"), "IBMAIL_PREVIOUS_ENCRYPTION_KEY"
	if cfg.previousEncryptionKeyFile != "" {
		b, err := os.ReadFile(cfg.previousEncryptionKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--previous-encryption-key-file: %w", err)
		}
		raw, source = string(b), "file "+cfg.previousEncryptionKeyFile
	}
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	key, err := secret.ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("previous encryption key (%s): %w", source, err)
	}
	box, err := secret.NewBox(key)
	if err != nil {
		return nil, err
	}
	return &server.KeySource{Box: box, Source: source}, nil
}

// lockDataDir takes an exclusive lock on <data-dir>/ibmaild.lock and
// writes this process's PID in it, so that a second ibmaild on the same
// data dir (which would fight this one over the SQLite file, the sequencer
// lease and the replica id) exits naming this one. The kernel drops the
// lock when the process ends, however it ends: a file left by a killed
// process does not block.
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "ibmaild.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another ibmaild"
			if pid := strings.TrimSpace(string(b)); pid != "" {
				holder = "another ibmaild (pid " + pid + ")"
			}
			return nil, fmt.Errorf("data dir %s is in use by %s: stop it, or give this server its own --data-dir", dir, holder)
		}
		return nil, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0) //nolint:errcheck // the PID only makes the message better
	}
	return func() {
		f.Truncate(0) //nolint:errcheck // best effort: the lock, not the text, is what counts
		f.Close()
	}, nil
}

// replicaID names this replica in dispatch leases: --replica-id, or an id
// generated once into the data dir, so that a restart takes its own
// in-flight batches back without waiting for their leases.
func replicaID(cfg config) (string, error) {
	if cfg.replicaID != "" {
		return cfg.replicaID, nil
	}
	path := filepath.Join(cfg.dataDir, "replica-id")
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	id := host + "-" + hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("replica id: %w", err)
	}
	return id, nil
}

// withTLS wraps both listeners in TLS with the configured certificate. gRPC
// clients require HTTP/2 by ALPN; the REST listener speaks HTTP/1.1.
func withTLS(cfg config, grpcLis, httpLis net.Listener) (net.Listener, net.Listener, error) {
	if cfg.tlsCert == "" || cfg.tlsKey == "" {
		return nil, nil, errors.New("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS certificate: %w", err)
	}
	base := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	g, h := base.Clone(), base.Clone()
	g.NextProtos, h.NextProtos = []string{"h2"}, []string{"http/1.1"}
	return tls.NewListener(grpcLis, g), tls.NewListener(httpLis, h), nil
}
