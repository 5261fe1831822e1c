package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
)

const ctlSandboxKey = "ctl-SECRET-sandbox-key-0123456789"

// Connections and senders managed end to end against a real server and the
// Infobip sandbox: the key goes in from a file and never comes out.
func TestConnectionsAndSendersCommands(t *testing.T) {
	sb := sandbox.New(sandbox.Options{APIKey: ctlSandboxKey, Seed: 3})
	hs := httptest.NewServer(sb)
	t.Cleanup(func() { hs.Close(); sb.Close() })
	srv := startServer(t, func(o *server.Options) { o.BaseURLs = server.BaseURLPolicy{Allowed: []string{hs.URL}} })
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	badKeyFile := filepath.Join(dir, "bad-key")
	if err := os.WriteFile(keyFile, []byte(ctlSandboxKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(badKeyFile, []byte("ctl-SECRET-wrong-key-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INFOBIP_API_KEY", "")
	cases := []ctlCase{
		{name: "add without a key", args: []string{"connections", "add", "main", "--base-url", hs.URL}, wantCode: exitUsage, wantErr: []string{"--api-key-file"}},
		{name: "add", args: []string{"connections", "add", "main", "--base-url", hs.URL, "--api-key-file", keyFile, "--application-id", "app-1", "--entity-id", "shop"},
			wantCode: exitOK, wantOut: []string{"id:", "main", "app-1", "shop", "webhook URL:", "webhook secret:", "shown this once"}},
		{name: "list", args: []string{"connections"}, wantCode: exitOK, wantOut: []string{"ID", "main", hs.URL, "app-1", "shop"}, notOut: []string{"webhook secret"}},
		{name: "test ok", args: []string{"connections", "test", "main"}, wantCode: exitOK, wantOut: []string{"OK"}},
		{name: "update", args: []string{"connections", "update", "main", "--entity-id", "shop-eu"}, wantCode: exitOK, wantOut: []string{"shop-eu", "app-1"}},
		{name: "update nothing", args: []string{"connections", "update", "main"}, wantCode: exitUsage, wantErr: []string{"at least one"}},
		{name: "bad key", args: []string{"connections", "update", "main", "--api-key-file", badKeyFile}, wantCode: exitOK},
		{name: "test a bad key", args: []string{"connections", "test", "main"}, wantCode: exitServer, wantOut: []string{"FAILED"}, wantErr: []string{"test failed"}},
		{name: "good key again", args: []string{"connections", "update", "main", "--api-key-file", keyFile}, wantCode: exitOK},
		{name: "sender add", args: []string{"senders", "add", "news", "--connection", "main", "--from", "news@example.com", "--from-name", "News"}, wantCode: exitOK, wantOut: []string{"news@example.com", "News"}},
		{name: "sender add incomplete", args: []string{"senders", "add", "x", "--from", "x@example.com"}, wantCode: exitUsage, wantErr: []string{"--connection and --from"}},
		{name: "senders", args: []string{"senders", "--connection", "main"}, wantCode: exitOK, wantOut: []string{"news", "main", "news@example.com"}},
		{name: "delete a connection in use", args: []string{"connections", "delete", "main"}, wantCode: exitServer, wantErr: []string{"FailedPrecondition"}},
		{name: "sender delete", args: []string{"senders", "delete", "news"}, wantCode: exitOK, wantOut: []string{"deleted sender news"}},
		{name: "rotate", args: []string{"connections", "rotate-secret", "main"}, wantCode: exitOK, wantOut: []string{"webhook secret:"}},
		{name: "delete", args: []string{"connections", "delete", "main"}, wantCode: exitOK, wantOut: []string{"deleted connection main"}},
		{name: "get a deleted one", args: []string{"connections", "get", "main"}, wantCode: exitServer, wantErr: []string{"NotFound"}},
		{name: "unknown action", args: []string{"connections", "frob"}, wantCode: exitUsage, wantErr: []string{"unknown action"}},
	}
	// The key is never printed: it is what ctlSandboxKey and the wrong key
	// share.
	for i := range cases {
		cases[i].notOut = append(cases[i].notOut, "SECRET")
		cases[i].notErr = append(cases[i].notErr, "SECRET")
	}
	runCases(t, srv, cases)
}
