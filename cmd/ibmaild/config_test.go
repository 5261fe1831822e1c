package main_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBadConfigurationRefusesToStart runs the binary with bad environment
// variables, bad flags, stray arguments and conflicting settings: each must
// exit non-zero before serving, naming the variable, flag or argument and
// what it expects. Secrets must not be echoed.
func TestBadConfigurationRefusesToStart(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		args    []string
		want    []string
		notWant string
	}{
		{"rate not a number", []string{"IBMAIL_SEND_RATE=abc"}, nil, []string{`IBMAIL_SEND_RATE="abc"`, "whole number"}, ""},
		{"grace without unit", []string{"IBMAIL_SHUTDOWN_GRACE=15"}, nil, []string{`IBMAIL_SHUTDOWN_GRACE="15"`, "want a duration such as 15s"}, ""},
		{"stray argument", nil, []string{"version"}, []string{`unexpected argument "version"`}, ""},
		{"rate zero", []string{"IBMAIL_SEND_RATE=0"}, nil, []string{"IBMAIL_SEND_RATE", "want 1 to"}, ""},
		{"rate zero flag", nil, []string{"--send-rate", "0"}, []string{"send-rate", "want 1 to"}, ""},
		{"concurrency zero", []string{"IBMAIL_SEND_CONCURRENCY=0"}, nil, []string{"IBMAIL_SEND_CONCURRENCY"}, ""},
		{"workers negative", []string{"IBMAIL_DISPATCH_WORKERS=-3"}, nil, []string{"IBMAIL_DISPATCH_WORKERS"}, ""},
		{"lease zero", []string{"IBMAIL_DISPATCH_LEASE=0s"}, nil, []string{"IBMAIL_DISPATCH_LEASE"}, ""},
		{"grace negative", []string{"IBMAIL_SHUTDOWN_GRACE=-1s"}, nil, []string{"IBMAIL_SHUTDOWN_GRACE", "more than 0"}, ""},
		{"body limit huge", []string{"IBMAIL_MAX_BODY_BYTES=99999999999999"}, nil, []string{"IBMAIL_MAX_BODY_BYTES", "want 1024 to"}, ""},
		{"body limit tiny", nil, []string{"--max-body-bytes", "10"}, []string{"max-body-bytes"}, ""},
		{"token rate not a number", []string{"IBMAIL_TOKEN_RATE=NaN"}, nil, []string{"IBMAIL_TOKEN_RATE", "want a number"}, ""},
		{"sandbox not a bool", []string{"IBMAIL_SANDBOX=yes"}, nil, []string{"IBMAIL_SANDBOX", "true or false"}, ""},
		{"log level", []string{"IBMAIL_LOG_LEVEL=loud"}, nil, []string{"IBMAIL_LOG_LEVEL", "debug, info, warn or error"}, ""},
		{"listen address", []string{"IBMAIL_HTTP_ADDR=localhost"}, nil, []string{"IBMAIL_HTTP_ADDR", "host:port"}, ""},
		{"listen port", []string{"IBMAIL_GRPC_ADDR=127.0.0.1:99999"}, nil, []string{"IBMAIL_GRPC_ADDR", "port"}, ""},
		{"public url", []string{"IBMAIL_PUBLIC_URL=ftp://x"}, nil, []string{"IBMAIL_PUBLIC_URL", "URL"}, ""},
		{"allowed base url with a path", []string{"IBMAIL_ALLOW_BASE_URLS=http://127.0.0.1:1/x"}, nil, []string{"IBMAIL_ALLOW_BASE_URLS", "origin"}, ""},
		{"db url", []string{"IBMAIL_DB=mysql://u:pw-in-url@h/db"}, nil, []string{"IBMAIL_DB", "postgres://"}, ""},
		{"nats url", []string{"IBMAIL_NATS_URL=http://127.0.0.1:4222"}, nil, []string{"IBMAIL_NATS_URL"}, ""},
		{"stream name", []string{"IBMAIL_NATS_URL=nats://127.0.0.1:4222", "IBMAIL_NATS_STREAM=a.b"}, nil, []string{"IBMAIL_NATS_STREAM", "stream name"}, ""},
		{"stream without nats", nil, []string{"--nats-stream", "OTHER"}, []string{"--nats-stream", "no effect without --nats-url"}, ""},
		{"token rate without tokens", nil, []string{"--token-rate", "5"}, []string{"--token-rate", "no effect without --tokens-file"}, ""},
		{"tls half", nil, []string{"--tls-cert", "c.pem"}, []string{"--tls-cert and --tls-key go together"}, ""},
		{"same listeners", nil, []string{"--grpc-addr", "127.0.0.1:7001", "--http-addr", "127.0.0.1:7001"}, []string{"--grpc-addr and --http-addr"}, ""},
		{"short secret", []string{"IBMAIL_WEBHOOK_SECRET=tiny-pw"}, nil, []string{"IBMAIL_WEBHOOK_SECRET (value not shown)"}, "tiny-pw"},
		{"secret with space flag", nil, []string{"--webhook-secret", "secret with spaces inside"}, []string{"--webhook-secret (value not shown)"}, "spaces inside"},
		{"two problems at once", []string{"IBMAIL_SEND_RATE=abc", "IBMAIL_SHUTDOWN_GRACE=15"}, []string{"extra"}, []string{"IBMAIL_SEND_RATE", "IBMAIL_SHUTDOWN_GRACE", `"extra"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			args := append([]string{"--data-dir", t.TempDir()}, tt.args...)
			cmd := exec.CommandContext(ctx, daemonBin, args...)
			cmd.Env = append(cleanEnv(), tt.env...)
			out, err := cmd.CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("ibmaild %v with %v: err %v (want a non-zero exit before serving)\n%s", tt.args, tt.env, err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tt.notWant != "" && strings.Contains(string(out), tt.notWant) {
				t.Errorf("output shows the secret %q:\n%s", tt.notWant, out)
			}
			if strings.Contains(string(out), `"msg":"serving"`) {
				t.Errorf("ibmaild served despite the bad configuration:\n%s", out)
			}
		})
	}
}

// TestGoodConfigurationFromEnvironmentStarts gives every setting by its
// environment variable, in forms the strict parsing accepts, and expects a
// healthy server.
func TestGoodConfigurationFromEnvironmentStarts(t *testing.T) {
	for _, kv := range []string{
		"IBMAIL_SEND_RATE=50", "IBMAIL_SEND_CONCURRENCY=2", "IBMAIL_DISPATCH_WORKERS=3",
		"IBMAIL_DISPATCH_LEASE=30s", "IBMAIL_SHUTDOWN_GRACE=5s", "IBMAIL_MAX_BODY_BYTES=1048576",
		"IBMAIL_LOG_LEVEL=debug", "IBMAIL_SANDBOX=false", "IBMAIL_PUBLIC_URL=https://mail.example.com/base",
		"IBMAIL_ALLOW_BASE_URLS=http://127.0.0.1:1,https://sandbox.example.com", "IBMAIL_WEBHOOK_SECRET=a-good-long-secret",
		"IBMAIL_REPLICA_ID=replica-a", "IBMAIL_TOKEN_RATE=",
	} {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	d := startDaemon(t, daemonBin, t.TempDir())
	if strings.Contains(d.stderr.String(), "a-good-long-secret") {
		t.Errorf("the webhook secret appears in the log")
	}
}

// cleanEnv is the test's environment without IBMAIL_ variables, so that a
// developer's settings do not change the outcome.
func cleanEnv() []string {
	var out []string
	for _, kv := range exec.Command("true").Environ() {
		if !strings.HasPrefix(kv, "IBMAIL_") {
			out = append(out, kv)
		}
	}
	return out
}
