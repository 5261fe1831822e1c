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

// Suppressions imported from a file, listed, exported in both formats and
// lifted.
func TestSuppressionsCommand(t *testing.T) {
	srv := startServer(t)
	list := filepath.Join(t.TempDir(), "old.csv")
	if err := os.WriteFile(list, []byte("email,reason,expire_time\nann@example.com,,\nbob@example.com,complained,\nnot-an-address,x,\nold@example.com,,2024-01-01T00:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runCases(t, srv, []ctlCase{
		{name: "import", args: []string{"suppressions", "import", list, "--default-reason", "moved from Acme"}, wantCode: exitOK,
			wantOut: []string{"2 imported, 0 already suppressed, 2 refused", "line 4: email:", "line 5: expire_time:"}},
		{name: "import again", args: []string{"suppressions", "import", list}, wantCode: exitOK, wantOut: []string{"0 imported, 2 already suppressed"}},
		{name: "list", args: []string{"suppressions"}, wantCode: exitOK, wantOut: []string{"ann@example.com", "moved from Acme", "import", "bob@example.com", "complained"}, inOrder: true},
		{name: "export csv", args: []string{"suppressions", "export"}, wantCode: exitOK, wantOut: []string{"email,reason,create_time,expire_time,origin\n", "ann@example.com,moved from Acme,"}},
		{name: "export json", args: []string{"suppressions", "export", "--format", "json"}, wantCode: exitOK, wantOut: []string{`"email":"bob@example.com"`, `"origin":"SUPPRESSION_ORIGIN_IMPORT"`}},
		{name: "bad format", args: []string{"suppressions", "export", "--format", "xml"}, wantCode: exitUsage, wantErr: []string{"csv or json"}},
		{name: "delete", args: []string{"suppressions", "delete", "ann@example.com"}, wantCode: exitOK, wantOut: []string{"lifted the suppression of ann@example.com"}},
		{name: "list after", args: []string{"suppressions"}, wantCode: exitOK, wantOut: []string{"bob@example.com"}, notOut: []string{"ann@example.com"}},
		{name: "missing file", args: []string{"suppressions", "import", "/nonexistent.csv"}, wantCode: exitUsage},
	})
}
