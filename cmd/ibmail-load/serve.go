package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/ibmail/ibmail/classifier"
	"github.com/ibmail/ibmail/dispatch"
	"github.com/ibmail/ibmail/secret"
	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
	"github.com/ibmail/ibmail/store/sqlite"
)

// childEnv, when set in the environment, makes this binary the server of
// a load run instead of the load tool: its value is the serveConfig as
// JSON. The load tool re-executes itself this way (--server-process), so
// that the server's memory is measured apart from the load clients'.
const childEnv = "IBMAIL_LOAD_SERVE"

// emptyPath is the empty handler served on the server's HTTP listener
// beside its own routes: it reads the body and answers 200, the ceiling of
// the listener, the client and the body sizes, with nothing of ibmail.
const emptyPath = "/_load/empty"

// serveConfig is what the server of a load run needs.
type serveConfig struct {
	DB         string `json:"db"`         // postgres:// URL, or "" for SQLite at SQLitePath
	SQLitePath string `json:"sqlitePath"` // the SQLite store's file
	// AllowBaseURLs are the origins (the load tool's sandbox) that
	// connections may name besides Infobip's.
	AllowBaseURLs []string `json:"allowBaseUrls"`
}

// serving is a running server of a load run.
type serving struct {
	store   store.Store
	grpc    string // host:port
	rest    string // http://host:port
	stop    func()
	stopped <-chan struct{}
}

// serve opens the store and serves gRPC and REST on 127.0.0.1 ports the
// system picks, with a dispatcher beside the server as cmd/ibmaild runs
// one, until stop.
func serve(ctx context.Context, sc serveConfig) (*serving, error) {
	var cleanups []func()
	stop := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	fail := func(err error) (*serving, error) { stop(); return nil, err }
	var st store.Store
	var err error
	if sc.DB != "" {
		st, err = postgres.Open(ctx, sc.DB)
	} else {
		st, err = sqlite.Open(ctx, sc.SQLitePath)
	}
	if err != nil {
		return fail(fmt.Errorf("store: %w", err))
	}
	cleanups = append(cleanups, func() { st.Close() })

	box, err := secret.NewBox(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		return fail(err)
	}
	vault := server.NewVault(box)
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		grpcLis.Close()
		return fail(err)
	}
	restURL := "http://" + httpLis.Addr().String()
	// The server logs as cmd/ibmaild does by default (JSON at info level),
	// into nothing, so that the cost of logging is in the figures.
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The dispatcher as cmd/ibmaild configures it, but for the limits of
	// BenchmarkDispatch (Infobip allows 2000 requests a second) and a
	// shorter poll: CreateSend and every finished batch wake it anyway.
	dispatcher := dispatch.New(dispatch.Options{
		Store:    st,
		Mailers:  server.MailerSource(st, vault, restURL, nil),
		Owner:    "ibmail-load",
		Poll:     100 * time.Millisecond,
		Defaults: dispatch.Limits{RequestsPerSecond: 2000, Concurrency: 8},
		Logger:   logger,
	})
	srvCtx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(srvCtx, server.Options{
		Store:          st,
		Engine:         classifier.Default(),
		WebhookSecret:  webhookSecret,
		Vault:          vault,
		BaseURLs:       server.BaseURLPolicy{Allowed: sc.AllowBaseURLs},
		PublicURL:      restURL,
		Tester:         server.InfobipTester{},
		WakeDispatcher: dispatcher.Wake,
		Logger:         logger,
	})
	if err != nil {
		cancel()
		grpcLis.Close()
		httpLis.Close()
		return fail(err)
	}
	// REST is served by an http.Server of this tool's, so that the empty
	// handler shares the listener, the server and its settings with the
	// webhooks; everything else goes to the server's handler (its
	// middleware included). Server.Serve gets a listener nobody dials.
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+emptyPath, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	})
	mux.Handle("/", srv.Handler())
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	idleLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		grpcLis.Close()
		httpLis.Close()
		return fail(err)
	}
	done := make(chan struct{})
	var parts = 3
	partDone := make(chan struct{}, parts)
	go func() {
		srv.Serve(srvCtx, grpcLis, idleLis, 5*time.Second) //nolint:errcheck // ends with cancel
		partDone <- struct{}{}
	}()
	go func() {
		httpSrv.Serve(httpLis) //nolint:errcheck // ends with Shutdown
		partDone <- struct{}{}
	}()
	go func() {
		dispatcher.Run(srvCtx) //nolint:errcheck // ends with cancel
		partDone <- struct{}{}
	}()
	cleanups = append(cleanups, func() {
		shut, c := context.WithTimeout(context.Background(), 5*time.Second)
		httpSrv.Shutdown(shut) //nolint:errcheck // best effort at the end of a run
		c()
		cancel()
		for range parts {
			<-partDone
		}
		srv.Close()
		close(done)
	})
	return &serving{store: st, grpc: grpcLis.Addr().String(), rest: restURL, stop: stop, stopped: done}, nil
}

// childReady is the line the server process prints once it serves.
type childReady struct {
	GRPC string `json:"grpc"`
	REST string `json:"rest"`
}

// childMain is the server process: it serves until its stdin closes (the
// load tool ended or asked it to stop), then shuts down.
func childMain(config string) int {
	var sc serveConfig
	if err := json.Unmarshal([]byte(config), &sc); err != nil {
		fmt.Fprintln(os.Stderr, "ibmail-load server:", err)
		return 2
	}
	s, err := serve(context.Background(), sc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ibmail-load server:", err)
		return 1
	}
	line, _ := json.Marshal(childReady{GRPC: s.grpc, REST: s.rest})
	fmt.Println(string(line))
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.stop()
	return 0
}

// startChild runs this binary as the server of the run and waits until it
// serves. stop closes its stdin and waits for it to exit.
func startChild(ctx context.Context, sc serveConfig) (pid int, ready childReady, stop func() error, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, ready, nil, err
	}
	config, _ := json.Marshal(sc)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(config))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, ready, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, ready, nil, err
	}
	if err := cmd.Start(); err != nil {
		return 0, ready, nil, err
	}
	stop = func() error {
		stdin.Close()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			return errors.Join(errors.New("the server process did not stop in 30 s; killed"), <-exited)
		}
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			return 0, ready, nil, errors.Join(errors.New("the server process exited before serving"), stop())
		}
		if err := json.Unmarshal([]byte(line), &ready); err != nil {
			return 0, ready, nil, errors.Join(fmt.Errorf("the server process said %q", line), stop())
		}
	case <-ctx.Done():
		return 0, ready, nil, errors.Join(ctx.Err(), stop())
	case <-time.After(time.Minute):
		return 0, ready, nil, errors.Join(errors.New("the server process did not serve within a minute"), stop())
	}
	return cmd.Process.Pid, ready, stop, nil
}

// peakRSS is a process's peak resident set size since it started or since
// the last resetPeakRSS (VmHWM in /proc/PID/status), in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}

// resetPeakRSS starts a process's peak RSS afresh from its current RSS
// (Linux: 5 written to /proc/PID/clear_refs), so that a phase's peak is its
// own.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
