package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ibmail/ibmail/cmd/internal/envflag"
	"github.com/ibmail/ibmail/server"
)

// config is what the flags and their IBMAIL_ environment variables set.
type config struct {
	grpcAddr          string
	httpAddr          string
	dataDir           string
	webhookSecret     string
	rulesFile         string
	maxBodyBytes      int64
	shutdownGrace     time.Duration
	logLevel          string
	publicURL         string
	allowBaseURLs     listFlag
	sandbox           bool
	encryptionKeyFile string
	// previousEncryptionKeyFile holds the key a rotation replaces.
	previousEncryptionKeyFile string
	sendRate                  int
	sendConcurrency           int
	dispatchWorkers           int
	dispatchLease             time.Duration
	replicaID                 string
	db                        string
	natsStream                string
	natsSubjectPrefix         string
	natsURL                   string
	tokensFile                string
	tlsCert                   string
	otlpEndpoint              string
	tlsKey                    string
	tokenRate                 float64
	maxAPIBodyBytes           int64
	limits                    server.TransportLimits
	pauseBounceRate           float64
	pauseMinReports           int64
}

// The bounds of --max-body-bytes: below a kilobyte no real report body
// fits; above a gigabyte one request could exhaust the server's memory.
const (
	minBodyBytes = 1 << 10
	maxBodyBytes = 1 << 30
)

// check refuses combinations of settings that conflict or do nothing, each
// named as the user gave it (flag or environment variable). Each flag's own
// value has been checked when it was parsed.
func (c *config) check(s *envflag.Set) error {
	var errs []error
	if (c.tlsCert == "") != (c.tlsKey == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together: give both or neither", s.Name("tls-cert"), s.Name("tls-key")))
	}
	if sameListenAddr(c.grpcAddr, c.httpAddr) {
		errs = append(errs, fmt.Errorf("%s and %s are both %q: the two listeners need different addresses", s.Name("grpc-addr"), s.Name("http-addr"), c.grpcAddr))
	}
	if c.natsURL == "" {
		for _, name := range []string{"nats-stream", "nats-subject-prefix"} {
			if s.IsSet(name) {
				errs = append(errs, fmt.Errorf("%s has no effect without --nats-url (env IBMAIL_NATS_URL)", s.Name(name)))
			}
		}
	}
	if c.pauseBounceRate == 0 && s.IsSet("pause-bounce-min-reports") {
		errs = append(errs, fmt.Errorf("%s has no effect without --pause-bounce-rate (env IBMAIL_PAUSE_BOUNCE_RATE)", s.Name("pause-bounce-min-reports")))
	}
	if c.tokensFile == "" && s.IsSet("token-rate") {
		errs = append(errs, fmt.Errorf("%s has no effect without --tokens-file (env IBMAIL_TOKENS_FILE)", s.Name("token-rate")))
	}
	if os.Getenv("IBMAIL_ENCRYPTION_KEY") != "" && c.encryptionKeyFile != "" {
		errs = append(errs, fmt.Errorf("IBMAIL_ENCRYPTION_KEY and %s both give the encryption key: give one", s.Name("encryption-key-file")))
	}
	return errors.Join(errs...)
}

// sameListenAddr reports whether two listen addresses name the same fixed
// port on the same host; port 0 (any free port) never collides.
func sameListenAddr(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa == "0" || pa != pb {
		return false
	}
	return ha == hb || ha == "" || hb == "" || ha == "0.0.0.0" || hb == "0.0.0.0" || ha == "::" || hb == "::"
}

// checkSecret refuses a webhook secret that is short or holds characters
// that do not survive an HTTP Basic password or a ?token= query, without
// showing the secret.
func checkSecret(v string) error {
	if v == "" {
		return nil
	}
	if len(v) < 12 || len(v) > 1024 {
		return fmt.Errorf("want 12 to 1024 characters, not %d", len(v))
	}
	for _, r := range v {
		if r <= ' ' || r > '~' {
			return errors.New("want printable ASCII without spaces")
		}
	}
	return nil
}

func checkLogLevel(v string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return errors.New("want debug, info, warn or error")
	}
	return nil
}

// checkDB refuses what is not a postgres:// URL, without quoting it: it may
// hold a password.
func checkDB(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("want a postgres:// URL, or nothing for the embedded SQLite")
	}
	return nil
}

// checkNATSURLs refuses a list holding anything but NATS server URLs
// (nats://, tls://, ws://, wss://, or host:port, which the client reads as
// nats://).
func checkNATSURLs(v string) error {
	if v == "" {
		return nil
	}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return errors.New("empty item: want comma-separated URLs such as nats://127.0.0.1:4222")
		}
		if !strings.Contains(item, "://") {
			item = "nats://" + item
		}
		if err := envflag.URL("nats", "tls", "ws", "wss")(item); err != nil {
			return fmt.Errorf("%q: %w", item, err)
		}
	}
	return nil
}

// checkStreamName applies JetStream's rules for stream names.
func checkStreamName(v string) error {
	if v == "" || len(v) > 255 || strings.ContainsAny(v, ".*>/\\") || strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return errors.New("want a JetStream stream name: 1 to 255 characters without spaces, '.', '*', '>', '/' or '\\'")
	}
	return nil
}

// checkSubjectPrefix applies NATS's rules for a literal subject.
func checkSubjectPrefix(v string) error {
	for _, token := range strings.Split(v, ".") {
		if token == "" || strings.ContainsAny(token, "*>") || strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return errors.New("want a NATS subject such as ibmail.events: dot-separated tokens without spaces, '*' or '>'")
		}
	}
	if len(v) > 200 {
		return errors.New("want at most 200 characters")
	}
	return nil
}

// listFlag holds a repeatable flag's values.
type listFlag []string

// The functions below read a flag's default from its environment variable
// for flags defined the plain flag-package way
// (fs.IntVar(&cfg.x, "x", int(envInt("IBMAIL_X", 4)), ...)). Unlike the
// fallback they once were, a value that does not parse is recorded and the
// server refuses to start (main reports envErrors). Prefer envflag.Set,
// which also checks ranges and names the flag in its messages.

var envProblems []error

// envErrors returns what envOr and its siblings could not parse.
func envErrors() error { return errors.Join(envProblems...) }

func envValue[T any](key string, def T, parse func(string) (T, error)) T {
	v, ok := os.LookupEnv(key)
	if !ok || v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		envProblems = append(envProblems, fmt.Errorf("%s=%q: %w", key, v, err))
		return def
	}
	return x
}

// envOr returns the environment variable's value, or def when it is unset.
func envOr(key, def string) string {
	return envValue(key, def, func(v string) (string, error) { return v, nil })
}

func envInt(key string, def int64) int64 { return envValue(key, def, envflag.ParseInt64) }

func envFloat(key string, def float64) float64 { return envValue(key, def, envflag.ParseFloat) }

func envBool(key string) bool { return envValue(key, false, envflag.ParseBool) }

func envDuration(key string, def time.Duration) time.Duration {
	return envValue(key, def, envflag.ParseDuration)
}
