package main

import (
	"context"
	"encoding/json"
	"net"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/ibmail/ibmail/buildinfo"
	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/rules"
	"github.com/ibmail/ibmail/server"
)

const hardBounceJSON = `{"messageId": "m-1", "to": "ann@example.com", "doneAt": "2024-05-01T10:00:00.256+0000",
  "status": {"id": 4, "groupId": 2, "groupName": "UNDELIVERABLE", "name": "UNDELIVERABLE_REJECTED_OPERATOR"},
  "error": {"id": 6012, "name": "EC_HARD_BOUNCE", "groupId": 2, "groupName": "BOUNCED", "permanent": true},
  "someFieldInfobipAddedLater": 1}`

const deliveredJSON = `{"messageId": "m-2", "to": "bob@example.com", "doneAt": "2024-05-01T10:00:00.256+0000",
  "status": {"id": 5, "groupId": 3, "groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"},
  "error": {"id": 0, "name": "NO_ERROR", "groupId": 0, "groupName": "OK", "permanent": false}}`

// checkResult compares a run with what a test case wants: the exit code,
// and substrings of stdout and stderr.
func checkResult(t *testing.T, got result, wantCode int, wantOut, wantErr []string) {
	t.Helper()
	if got.code != wantCode {
		t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", got.code, wantCode, got.stdout, got.stderr)
	}
	for _, w := range wantOut {
		if !strings.Contains(got.stdout, w) {
			t.Errorf("stdout lacks %q:\n%s", w, got.stdout)
		}
	}
	for _, w := range wantErr {
		if !strings.Contains(got.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
		}
	}
}

func TestClassify(t *testing.T) {
	srv := startServer(t)
	reportFile := writeFile(t, "report.json", hardBounceJSON)
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  []string
	}{
		{"one report from a file", "", []string{"classify", reportFile}, exitOK,
			[]string{"m-1", "newsletter.hardbounce", "EVENT", "rule 6"}, nil},
		{"webhook body from stdin", `{"results": [` + hardBounceJSON + `,` + deliveredJSON + `]}`, []string{"classify"}, exitOK,
			[]string{"m-1", "newsletter.hardbounce", "m-2", "NO_ERROR"}, nil},
		{"json output", hardBounceJSON, []string{"classify", "--output", "json", "-"}, exitOK,
			[]string{`"eventName": "newsletter.hardbounce"`, `"outcome": "REPORT_OUTCOME_EVENT"`}, nil},
		{"not json", "nope", []string{"classify"}, exitUsage, nil, []string{"stdin: not a JSON object"}},
		{"empty body", `{"results": []}`, []string{"classify"}, exitUsage, nil, []string{"no results"}},
		{"missing file", "", []string{"classify", "/nonexistent/report.json"}, exitUsage, nil, []string{"no such file"}},
		{"two files", "", []string{"classify", reportFile, reportFile}, exitUsage, nil, []string{"at most one FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, ctl(t, srv.addr, tt.stdin, tt.args...), tt.wantCode, tt.wantOut, tt.wantErr)
		})
	}
}

var sendIDPattern = regexp.MustCompile(`^send-[0-9a-z]+\n$`)

func TestSendAndSendStatus(t *testing.T) {
	srv := startServer(t)
	srv.provisionSender(t)
	html := writeFile(t, "hello.html", "<p>Hi {{name}}</p>")
	people := writeFile(t, "people.csv", "email,profileId,name\nann@example.com,ann,Ann\nbob@example.com,,\n")
	base := []string{"send", "--sender", "s1", "--subject", "Hello {{name}}", "--html", html}

	got := ctl(t, srv.addr, "", append(base, "--recipients", people, "--idempotency-key", "k1", "--campaign", "spring")...)
	checkResult(t, got, exitOK, nil, nil)
	if !sendIDPattern.MatchString(got.stdout) {
		t.Fatalf("send printed %q, want a send id and a newline", got.stdout)
	}
	id := strings.TrimSpace(got.stdout)

	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  []string
	}{
		{"same idempotency key gives the same send", "", append(base, "--recipients", people, "--idempotency-key", "k1", "--campaign", "spring"), exitOK, []string{id}, nil},
		{"same idempotency key with another request is refused, naming the send", "", append(base, "--recipients", people, "--idempotency-key", "k1"), exitServer, nil, []string{"ibmailctl: ", id}},
		{"recipients from stdin", "email,profileId\ncy@example.com,cy\n", append(base, "--recipients", "-"), exitOK, []string{"send-"}, nil},
		{"unknown sender is refused by the server", "", []string{"send", "--sender", "nobody", "--subject", "S", "--html", html, "--recipients", people}, exitServer, nil, []string{"ibmailctl: "}},
		{"no sender", "", []string{"send", "--subject", "S", "--html", html, "--recipients", people}, exitUsage, nil, []string{"--sender is required"}},
		{"no body", "", []string{"send", "--sender", "s1", "--subject", "S", "--recipients", people}, exitUsage, nil, []string{"--html, --text or --template-id"}},
		{"template and html", "", append(base, "--template-id", "3", "--recipients", people), exitUsage, nil, []string{"excludes"}},
		{"bad csv names the line", "email,profileId\nann@example.com,ann\n\"broken,x\n", append(base, "--recipients", "-"), exitUsage, nil, []string{"-: line 3:"}},
		{"wait times out while no dispatcher runs", "", append(base, "--recipients", people, "--idempotency-key", "k2", "--wait", "--timeout", "300ms"), exitUnreachable, []string{"send-"}, []string{"DeadlineExceeded"}},

		{"status counts", "", []string{"send-status", id}, exitOK, []string{"state", "DISPATCHING", "recipients  2", "pending     2"}, nil},
		{"status with recipients", "", []string{"send-status", "--recipients", id}, exitOK,
			[]string{"ann@example.com", "ann", "bob@example.com", "PENDING"}, nil},
		{"status json with recipients", "", []string{"send-status", id, "--recipients", "--output", "json"}, exitOK,
			[]string{`"send"`, `"recipients"`, `"profileId": "ann"`}, nil},
		{"status of an unknown send", "", []string{"send-status", "send-nope"}, exitServer, nil, []string{"NotFound"}},
		{"status without id", "", []string{"send-status"}, exitUsage, nil, []string{"one SEND_ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, ctl(t, srv.addr, tt.stdin, tt.args...), tt.wantCode, tt.wantOut, tt.wantErr)
		})
	}
}

func TestParseRecipients(t *testing.T) {
	tests := []struct {
		name    string
		csv     string
		want    string // the recipients as JSON, when no error
		wantErr string
	}{
		{"placeholders and defaults", "\ufeffemail,profileId,name,city\nann@example.com,ann,Ann,\nBob@example.com,,Bob,Oslo\n",
			`[{"email":"ann@example.com","profileId":"ann","placeholders":{"name":"Ann"}},{"email":"Bob@example.com","placeholders":{"city":"Oslo","name":"Bob"}}]`, ""},
		{"empty file", "", "", "line 1: empty file"},
		{"wrong header", "mail,id\na@x.com,a\n", "", "line 1: header"},
		{"unnamed placeholder column", "email,profileId,\na@x.com,a,1\n", "", "line 1: column 3"},
		{"only a header", "email,profileId\n", "", "line 2: no recipients"},
		{"missing email", "email,profileId\na@x.com,a\n,b\n", "", "line 3: email is empty"},
		{"not an address", "email,profileId\nbob,b\n", "", `line 2: "bob" is not an email`},
		{"duplicate address", "email,profileId\na@x.com,a\nb@x.com,b\nA@X.com,c\n", "", "line 4: A@X.com is already on line 2"},
		{"too few fields", "email,profileId,name\na@x.com,a,A\nb@x.com,b\n", "", "line 3: wrong number of fields"},
		{"bad quoting", "email,profileId\na@x.com,\"a\"b\n", "", "line 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := parseRecipients(strings.NewReader(tt.csv))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			var parts []string
			for _, r := range rs {
				parts = append(parts, string(rawJSON(r)))
			}
			if got := normalizeJSON(t, "["+strings.Join(parts, ",")+"]"); got != normalizeJSON(t, tt.want) {
				t.Errorf("got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// normalizeJSON re-encodes JSON so that spacing and key order compare equal.
func normalizeJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad JSON %s: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestEventsAndSegment(t *testing.T) {
	srv := startServer(t)
	srv.ingest(t,
		hardBounce("m-1", "ann@example.com", "ann", "2024-05-01T10:00:00.000+0000"),
		hardBounce("m-2", "ann2@example.com", "ann", "2024-05-03T10:00:00.000+0000"),
		hardBounce("m-3", "bob@example.com", "bob", "2024-06-02T10:00:00.000+0000"),
	)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // the whole stdout when wantCode is 0
		wantErr  string
	}{
		{"segment everything", []string{"segment", "--event", "newsletter.hardbounce"}, exitOK,
			"profileId,email,eventCount,lastEventTime\nann,ann2@example.com,2,2024-05-03T10:00:00Z\nbob,bob@example.com,1,2024-06-02T10:00:00Z\n", ""},
		{"segment in May", []string{"segment", "--event", "newsletter.hardbounce", "--event", "newsletter.spambounce",
			"--since", "2024-05-01T00:00:00Z", "--until", "2024-06-01T00:00:00Z"}, exitOK,
			"profileId,email,eventCount,lastEventTime\nann,ann2@example.com,2,2024-05-03T10:00:00Z\n", ""},
		{"segment with no match", []string{"segment", "--event", "newsletter.dropped"}, exitOK,
			"profileId,email,eventCount,lastEventTime\n", ""},
		{"segment without events", []string{"segment"}, exitUsage, "", "at least one --event"},
		{"segment with a bad time", []string{"segment", "--event", "x", "--since", "yesterday"}, exitUsage, "", "RFC 3339"},

		{"events newest first", []string{"events", "ann"}, exitOK,
			"TIME                  EVENT                  EMAIL             MESSAGE_ID  DETAIL\n" +
				"2024-05-03T10:00:00Z  newsletter.hardbounce  ann2@example.com  m-2         EC_HARD_BOUNCE\n" +
				"2024-05-01T10:00:00Z  newsletter.hardbounce  ann@example.com   m-1         EC_HARD_BOUNCE\n", ""},
		{"events with a limit", []string{"events", "ann", "--limit", "1"}, exitOK,
			"TIME                  EVENT                  EMAIL             MESSAGE_ID  DETAIL\n" +
				"2024-05-03T10:00:00Z  newsletter.hardbounce  ann2@example.com  m-2         EC_HARD_BOUNCE\n", ""},
		{"events filtered away", []string{"events", "--event", "newsletter.softbounce", "ann"}, exitOK,
			"TIME  EVENT  EMAIL  MESSAGE_ID  DETAIL\n", ""},
		{"events without a profile", []string{"events"}, exitUsage, "", "one PROFILE_ID"},
		{"events with a negative limit", []string{"events", "ann", "--limit", "-1"}, exitUsage, "", "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ctl(t, srv.addr, "", tt.args...)
			if got.code != tt.wantCode {
				t.Fatalf("exit code = %d, want %d; stderr: %s", got.code, tt.wantCode, got.stderr)
			}
			if tt.wantCode == exitOK && got.stdout != tt.wantOut {
				t.Errorf("stdout:\n%s\nwant:\n%s", got.stdout, tt.wantOut)
			}
			if !strings.Contains(got.stderr, tt.wantErr) {
				t.Errorf("stderr %q lacks %q", got.stderr, tt.wantErr)
			}
		})
	}

	// JSON output carries the API's own fields.
	got := ctl(t, srv.addr, "", "events", "bob", "--output", "json")
	var body struct {
		Events []struct {
			Action string            `json:"action"`
			Params map[string]string `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(got.stdout), &body); err != nil || len(body.Events) != 1 || body.Events[0].Params["messageId"] != "m-3" {
		t.Errorf("events --output json = %s (err %v)", got.stdout, err)
	}
}

func TestExitCodesAndHelp(t *testing.T) {
	srv := startServer(t)
	nowhere := unusedAddr(t)
	tests := []struct {
		name     string
		addr     string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  []string
	}{
		{"help names every subcommand and exit code", srv.addr, []string{"--help"}, exitOK,
			[]string{"classify", "tracking", "send", "send-status", "events", "segment", "domains", "unblock", "Exit codes:", "3  could not connect"}, nil},
		{"help subcommand", srv.addr, []string{"help", "segment"}, exitOK, []string{"Usage: ibmailctl segment", "--since", "Example:"}, nil},
		{"subcommand help", srv.addr, []string{"events", "--help"}, exitOK, []string{"Usage: ibmailctl events PROFILE_ID", "--limit", "Example:"}, nil},
		{"no subcommand", srv.addr, nil, exitUsage, nil, []string{"no subcommand", "Usage: ibmailctl"}},
		{"unknown subcommand", srv.addr, []string{"frobnicate"}, exitUsage, nil, []string{`unknown subcommand "frobnicate"`, "Usage: ibmailctl"}},
		{"unknown global flag", srv.addr, []string{"--nope", "events", "x"}, exitUsage, nil, []string{"-nope", "Usage: ibmailctl"}},
		{"unknown subcommand flag", srv.addr, []string{"events", "x", "--nope"}, exitUsage, nil, []string{"-nope", "Usage: ibmailctl events"}},
		{"bad output format", srv.addr, []string{"events", "x", "--output", "yaml"}, exitUsage, nil, []string{"text or json"}},
		{"help of an unknown subcommand", srv.addr, []string{"help", "frobnicate"}, exitUsage, nil, []string{`unknown subcommand "frobnicate"`}},
		{"help with extra arguments", srv.addr, []string{"help", "events", "x"}, exitUsage, nil, []string{`unexpected argument "x"`}},
		{"negative timeout", srv.addr, []string{"--timeout", "-1s", "events", "x"}, exitUsage, nil, []string{"--timeout"}},
		{"address without port", "localhost", []string{"events", "x"}, exitUsage, nil, []string{"--addr", "host:port"}},
		{"stray argument", srv.addr, []string{"segment", "--event", "e", "extra"}, exitUsage, nil, []string{"no arguments"}},
		{"plaintext and tls", srv.addr, []string{"--plaintext", "--tls", "events", "x"}, exitUsage, nil, []string{"exclude"}},
		{"server refuses", srv.addr, []string{"send-status", "send-nope"}, exitServer, nil, []string{"NotFound"}},
		{"nothing listens", nowhere, []string{"events", "x"}, exitUnreachable, nil, []string{"Unavailable", "no ibmail server answered at " + nowhere + " (plaintext)", "--addr"}},
		{"version", srv.addr, []string{"--version"}, exitOK, []string{"ibmailctl " + buildinfo.Read().Version, runtime.Version()}, nil},
		{"success", srv.addr, []string{"events", "x"}, exitOK, []string{"TIME"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, ctl(t, tt.addr, "", tt.args...), tt.wantCode, tt.wantOut, tt.wantErr)
		})
	}
}

func TestTransportChoice(t *testing.T) {
	tests := []struct {
		g    globals
		want bool
	}{
		{globals{addr: "127.0.0.1:9090"}, false},
		{globals{addr: "localhost:9090"}, false},
		{globals{addr: "[::1]:9090"}, false},
		{globals{addr: "ibmail.example.com:443"}, true},
		{globals{addr: "ibmail.example.com:443", plaintext: true}, false},
		{globals{addr: "127.0.0.1:9090", tls: true}, true},
	}
	for _, tt := range tests {
		if got := useTLS(&tt.g); got != tt.want {
			t.Errorf("useTLS(%+v) = %v, want %v", tt.g, got, tt.want)
		}
	}
}

// TestTokenIsSentNotPrinted serves the real classifier behind an
// interceptor that records the metadata it receives.
func TestTokenIsSentNotPrinted(t *testing.T) {
	got := make(chan []string, 1)
	gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		got <- md.Get("authorization")
		return h(ctx, req)
	}))
	ibmailv1.RegisterClassifierServiceServer(gs, server.NewClassifierService(rules.Static(classifier.Default())))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis) //nolint:errcheck
	t.Cleanup(gs.Stop)

	t.Setenv("IBMAIL_TOKEN", "tok-from-env-123")
	res := ctl(t, lis.Addr().String(), hardBounceJSON, "classify")
	checkResult(t, res, exitOK, []string{"newsletter.hardbounce"}, nil)
	if md := <-got; len(md) != 1 || md[0] != "Bearer tok-from-env-123" {
		t.Errorf("authorization metadata = %q, want the bearer token", md)
	}
	res = ctl(t, lis.Addr().String(), hardBounceJSON, "--token", "tok-flag-456", "classify")
	if md := <-got; len(md) != 1 || md[0] != "Bearer tok-flag-456" {
		t.Errorf("authorization metadata = %q, want the --token value", md)
	}
	help := ctl(t, lis.Addr().String(), "", "--help")
	for _, r := range []result{res, help} {
		if strings.Contains(r.stdout+r.stderr, "tok-") {
			t.Errorf("token printed: %s %s", r.stdout, r.stderr)
		}
	}
}
