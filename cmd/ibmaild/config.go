package main

import (
	"os"
	"strconv"
	"strings"
	"time"

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
	sendRate          int
	sendConcurrency   int
	dispatchWorkers   int
	dispatchLease     time.Duration
	replicaID         string
	db                string
	natsStream        string
	natsSubjectPrefix string
	natsURL           string
	tokensFile        string
	tlsCert           string
	otlpEndpoint      string
	tlsKey            string
	tokenRate         float64
	maxAPIBodyBytes   int64
	limits            server.TransportLimits
}

// listFlag is a repeatable flag whose environment variable holds a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func envList(key string) listFlag {
	var out listFlag
	for _, v := range strings.Split(os.Getenv(key), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// envOr returns the environment variable's value, or def when it is unset,
// so that every flag's default can come from the environment.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func envInt(key string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(key), 10, 64); err == nil {
		return v
	}
	return def
}

func envFloat(key string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(key), 64); err == nil {
		return v
	}
	return def
}

func envBool(key string) bool {
	v, _ := strconv.ParseBool(os.Getenv(key))
	return v
}

func envDuration(key string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(key)); err == nil {
		return v
	}
	return def
}
