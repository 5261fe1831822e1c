package main

import (
	"os"
	"strconv"
	"time"
)

// config is what the flags and their IBMAIL_ environment variables set.
type config struct {
	grpcAddr      string
	httpAddr      string
	dataDir       string
	webhookSecret string
	rulesFile     string
	maxBodyBytes  int64
	shutdownGrace time.Duration
	logLevel      string
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

func envDuration(key string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(key)); err == nil {
		return v
	}
	return def
}
