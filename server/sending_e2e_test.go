package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ibmail/ibmail/dispatch"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/metrics"
	"github.com/ibmail/ibmail/sandbox"
)

const sandboxKey = "sandbox-key-0123456789abcdef"

// newSandbox serves an Infobip sandbox on loopback for one test.
func newSandbox(t *testing.T, opts sandbox.Options) (*sandbox.Sandbox, string) {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = sandboxKey
	}
	if opts.Seed == 0 {
		opts.Seed = 7
	}
	opts.ReportRetryBase = 20 * time.Millisecond
	sb := sandbox.New(opts)
	srv := httptest.NewServer(sb)
	t.Cleanup(func() { srv.Close(); sb.Close() })
	return sb, srv.URL
}

// sendingEnv is a server with a dispatcher, a sandbox as its Infobip, and
// connection c1 with sender s1 on it; extra options come last.
func sendingEnv(t *testing.T, sbOpts sandbox.Options, adjust func(*dispatch.Options), extra ...envOption) (*testEnv, *sandbox.Sandbox) {
	t.Helper()
	sb, url := newSandbox(t, sbOpts)
	env := newTestEnv(t, append([]envOption{withAllowedBaseURL(url), withDispatcher(adjust)}, extra...)...)
	ctx := context.Background()
	if _, err := env.conns.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{
		Id: "c1", ApiKey: sandboxKey, BaseUrl: url,
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.senders.CreateSender(ctx, &ibmailv1.CreateSenderRequest{Sender: &ibmailv1.Sender{
		Id: "s1", ConnectionId: "c1", FromAddress: "news@example.com", FromName: "News",
	}}); err != nil {
		t.Fatal(err)
	}
	return env, sb
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSendDone waits until every recipient of a send has a final state.
func waitSendDone(t *testing.T, env *testEnv, id string) *ibmailv1.Send {
	t.Helper()
	var s *ibmailv1.Send
	waitFor(t, "send "+id+" to finish", 60*time.Second, func() (bool, string) {
		resp, err := env.sends.GetSend(context.Background(), &ibmailv1.GetSendRequest{SendId: id})
		if err != nil {
			return false, err.Error()
		}
		s = resp.GetSend()
		return s.GetState() == ibmailv1.SendState_SEND_STATE_DONE, fmt.Sprint(s)
	})
	return s
}

// recipients makes n recipients p-<i> / <prefix>user<i>@example.com.
func recipients(n int, prefix string) []*ibmailv1.RecipientInput {
	out := make([]*ibmailv1.RecipientInput, n)
	for i := range out {
		out[i] = &ibmailv1.RecipientInput{ProfileId: fmt.Sprintf("p-%d", i), Email: fmt.Sprintf("%suser%d@example.com", prefix, i)}
	}
	return out
}

// sendEachOnce sends to recipients(n, "") from s1, waits for the send to
// finish, and checks what a send must achieve whatever the sandbox or the
// dispatchers did along the way: every recipient accepted, and each at the
// sandbox exactly once. It returns the sandbox's stats for the caller's
// checks that its faults did happen.
func sendEachOnce(t *testing.T, env *testEnv, sb *sandbox.Sandbox, n int) sandbox.Stats {
	t.Helper()
	resp, err := env.sends.CreateSend(context.Background(), &ibmailv1.CreateSendRequest{
		SenderId: "s1", Subject: "s", Text: "t", Recipients: recipients(n, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := waitSendDone(t, env, resp.GetSend().GetId())
	st := sb.Stats()
	if int(s.GetAcceptedCount()) != n {
		t.Errorf("send = %v, want all %d accepted", s, n)
	}
	if st.Recipients != int64(n) || st.DuplicateRecipients != 0 {
		t.Errorf("sandbox received %d recipients with %d duplicates, want %d and 0 (stats %+v)", st.Recipients, st.DuplicateRecipients, n, st)
	}
	return st
}

func TestSendDispatchesInBatchesAndAttributesBounces(t *testing.T) {
	env, sb := sendingEnv(t, sandbox.Options{}, nil)
	rs := recipients(2495, "")
	bounces := map[string]string{
		"hardbounce.ann@example.com": "newsletter.hardbounce",
		"softbounce.bob@example.com": "newsletter.softbounce",
		"inboxfull.cy@example.com":   "newsletter.softbounce",
		"spam.di@example.com":        "newsletter.spambounce",
		"suppressed.ed@example.com":  "newsletter.spambounce",
		"dropped.fy@example.com":     "newsletter.dropped",
	}
	for email := range bounces {
		rs = append(rs, &ibmailv1.RecipientInput{ProfileId: "profile-" + email, Email: email})
	}
	okBefore := testutil.ToFloat64(metrics.InfobipRequests.WithLabelValues("200"))
	resp, err := env.sends.CreateSend(context.Background(), &ibmailv1.CreateSendRequest{
		SenderId: "s1", Subject: "Hello {{name}}", Html: "<p>Hi {{name}}</p>", Recipients: rs,
		DefaultPlaceholders: map[string]string{"name": "there"}, TrackOpens: true, CampaignId: "spring",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := waitSendDone(t, env, resp.GetSend().GetId())
	if s.GetAcceptedCount() != 2501 || s.GetFailedCount() != 0 || s.GetRejectedCount() != 0 {
		t.Errorf("send = %v, want all 2501 accepted", s)
	}
	st := sb.Stats()
	if st.SendRequests != 3 || st.Recipients != 2501 || st.DuplicateRecipients != 0 {
		t.Errorf("sandbox saw %d send requests, %d recipients, %d duplicates; want 3, 2501, 0", st.SendRequests, st.Recipients, st.DuplicateRecipients)
	}
	if got := testutil.ToFloat64(metrics.InfobipRequests.WithLabelValues("200")) - okBefore; got != 3 {
		t.Errorf("the Infobip 200s metric moved by %v, want 3", got)
	}
	for email, event := range bounces {
		profile := "profile-" + email
		// Each profile also has the message.send of its acceptance.
		waitFor(t, event+" on "+profile, 30*time.Second, func() (bool, string) {
			return latestEvent(t, env, profile, event) != nil, "none yet"
		})
	}
	// The recipient list shows Infobip's message id and the last event.
	list, err := env.sends.ListSendRecipients(context.Background(), &ibmailv1.ListSendRecipientsRequest{SendId: s.GetId(), PageSize: 1000, PageToken: ""})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list.GetRecipients() {
		if r.GetMessageId() == "" || r.GetState() != ibmailv1.RecipientState_RECIPIENT_STATE_ACCEPTED || !strings.HasPrefix(r.GetBulkId(), s.GetId()) {
			t.Fatalf("recipient %v: want accepted with a message id and the send's bulk id", r)
		}
	}
}

func TestSecondSendSkipsSuppressed(t *testing.T) {
	env, sb := sendingEnv(t, sandbox.Options{}, nil)
	rs := []*ibmailv1.RecipientInput{
		{ProfileId: "a", Email: "hardbounce.a@example.com"},
		{ProfileId: "b", Email: "spam.b@example.com"},
		{ProfileId: "c", Email: "softbounce.c@example.com"},
		{ProfileId: "d", Email: "d@example.com"},
	}
	send := func(key string) *ibmailv1.Send {
		resp, err := env.sends.CreateSend(context.Background(), &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: "s", Text: "t", Recipients: rs, IdempotencyKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return waitSendDone(t, env, resp.GetSend().GetId())
	}
	send("first")
	waitFor(t, "two suppressions", 30*time.Second, func() (bool, string) {
		l, err := env.supps.ListSuppressions(context.Background(), &ibmailv1.ListSuppressionsRequest{})
		return err == nil && len(l.GetSuppressions()) == 2, fmt.Sprint(l, err)
	})
	before := sb.Stats().Recipients
	second := send("second")
	if second.GetSuppressedCount() != 2 || second.GetAcceptedCount() != 2 {
		t.Errorf("second send = %v, want 2 suppressed and 2 accepted", second)
	}
	if got := sb.Stats().Recipients - before; got != 2 {
		t.Errorf("the sandbox received %d recipients of the second send, want 2", got)
	}
}

func TestRetriesUnderFaultsLoseAndDuplicateNothing(t *testing.T) {
	tests := []struct {
		name     string
		faults   sandbox.Faults
		injected func(sandbox.Stats) int64
	}{
		// Faults are picked by request count, not by the dispatcher's speed
		// (a rate limit of 3/s injected nothing on a busy machine) or by
		// chance alone, so every case is sure to meet its fault.
		{"429 storm", sandbox.Faults{RetryAfter: 50 * time.Millisecond, Counted: sandbox.Counted{Throttle: sandbox.Count{First: 3, Every: 2}}}, func(s sandbox.Stats) int64 { return s.Rejected429 }},
		{"5xx", sandbox.Faults{FailRate: 0.3, Counted: sandbox.Counted{Fail: sandbox.Count{First: 1, Every: 3}}}, func(s sandbox.Stats) int64 { return s.Failed5xx }},
		{"lost answers", sandbox.Faults{LoseRate: 0.2, LoseMode: sandbox.LoseClose, Counted: sandbox.Counted{Lose: sandbox.Count{First: 1, Every: 3}}}, func(s sandbox.Stats) int64 { return s.Lost }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, sb := sendingEnv(t, sandbox.Options{Faults: tt.faults}, func(o *dispatch.Options) { o.MaxAttempts = 100 })
			st := sendEachOnce(t, env, sb, 12000)
			if tt.injected(st) == 0 {
				t.Errorf("no fault was injected (stats %+v): the test proves nothing", st)
			}
		})
	}
}

func TestConnectionTestExplainsBadKey(t *testing.T) {
	sb, url := newSandbox(t, sandbox.Options{LimitedKeys: []string{"limited-key-0123456789"}})
	_ = sb
	env := newTestEnv(t, withAllowedBaseURL(url))
	tests := []struct {
		key        string
		wantResult ibmailv1.ConnectionTestResult
		wantStatus int32
		wantInMsg  string
	}{
		{sandboxKey, ibmailv1.ConnectionTestResult_CONNECTION_TEST_RESULT_OK, 200, "works"},
		{"wrong-key-0123456789", ibmailv1.ConnectionTestResult_CONNECTION_TEST_RESULT_UNAUTHORIZED, 401, "401"},
		{"limited-key-0123456789", ibmailv1.ConnectionTestResult_CONNECTION_TEST_RESULT_FORBIDDEN, 403, "email:message:send"},
	}
	for i, tt := range tests {
		id := fmt.Sprintf("k%d", i)
		if _, err := env.conns.CreateConnection(context.Background(), &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{Id: id, ApiKey: tt.key, BaseUrl: url}}); err != nil {
			t.Fatal(err)
		}
		code, got := env.do(t, http.MethodPost, "/v1/connections/"+id+":test", "application/json", []byte(`{}`))
		if code != http.StatusOK {
			t.Fatalf("%s: %d %v", id, code, got)
		}
		if got["result"] != tt.wantResult.String() || got["httpStatus"] != float64(tt.wantStatus) || !strings.Contains(got["message"].(string), tt.wantInMsg) {
			t.Errorf("test of key %d = %v; want %s, %d, message naming %q", i, got, tt.wantResult, tt.wantStatus, tt.wantInMsg)
		}
		if strings.Contains(toJSON(got), tt.key) {
			t.Errorf("the test answer shows the API key")
		}
	}
	if n := sb.Stats().PullReportCalls; n != 0 {
		t.Errorf("testing read /email/1/reports %d times; it must never", n)
	}
	for _, tt := range tests {
		if strings.Contains(env.logs.String(), tt.key) {
			t.Errorf("an API key appears in the log")
		}
	}

	// An unreachable base URL says so.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	env2 := newTestEnv(t, withAllowedBaseURL(deadURL))
	if _, err := env2.conns.CreateConnection(context.Background(), &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{Id: "dead", ApiKey: sandboxKey, BaseUrl: deadURL}}); err != nil {
		t.Fatal(err)
	}
	res, err := env2.conns.TestConnection(context.Background(), &ibmailv1.TestConnectionRequest{ConnectionId: "dead"})
	if err != nil || res.GetResult() != ibmailv1.ConnectionTestResult_CONNECTION_TEST_RESULT_UNREACHABLE {
		t.Errorf("unreachable: %v %v", res, err)
	}
}

// TestBatchesQueuedPastTheirLeaseAreSentOnce queues more batches on one
// connection than it sends within a lease. With leases renewed, waiting
// batches stay their dispatcher's. With renewal failing (as when the store
// is out of a replica's reach), they are claimed again by the same
// dispatcher or taken over by another one. Either way each must go to
// Infobip once.
func TestBatchesQueuedPastTheirLeaseAreSentOnce(t *testing.T) {
	tests := []struct {
		name        string
		dispatchers int
		renew       bool
	}{
		{"leases renewed", 2, true},
		{"one dispatcher, no renewal", 1, false},
		{"two dispatchers, no renewal", 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adjust := func(o *dispatch.Options) {
				// 12 batches one at a time take 7.2 s; the lease and
				// the request timeout (half of it) leave room for a slow
				// machine, and the ambiguity delay for a slow sandbox.
				o.Lease = 6 * time.Second
				o.AmbiguityDelay = 3 * time.Second
				o.Defaults.Concurrency = 1
				if !tt.renew {
					o.LeaseRenewal = -1
					o.MaxAttempts = 100 // claims of a waiting batch count as attempts
				}
			}
			env, sb := sendingEnv(t, sandbox.Options{Faults: sandbox.Faults{Latency: 600 * time.Millisecond}}, adjust,
				withDispatchers(tt.dispatchers, adjust))
			st := sendEachOnce(t, env, sb, 12000)
			if st.SendRequests != 12 {
				t.Errorf("sandbox saw %d send requests, want one per batch: 12 (stats %+v)", st.SendRequests, st)
			}
		})
	}
}

// TestReplicasShareTheConnectionRate runs two dispatchers on one store
// against a connection allowed 2 requests a second, one at a time. Had
// each replica its own rate, the six batches would go out in about one
// second; shared, they cannot take less than two and a half.
func TestReplicasShareTheConnectionRate(t *testing.T) {
	adjust := func(o *dispatch.Options) {
		o.Defaults = dispatch.Limits{RequestsPerSecond: 2, Concurrency: 1}
		o.Workers = 3 // neither dispatcher takes all six batches
	}
	env, sb := sendingEnv(t, sandbox.Options{}, adjust, withDispatchers(2, adjust))
	var first, sixth time.Time
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			n := sb.Stats().SendRequests
			if n >= 1 && first.IsZero() {
				first = time.Now()
			}
			if n >= 6 {
				sixth = time.Now()
				return
			}
		}
	}()
	st := sendEachOnce(t, env, sb, 6000)
	<-watched
	if st.SendRequests != 6 {
		t.Errorf("sandbox saw %d send requests, want 6", st.SendRequests)
	}
	// 5 intervals of 500 ms from the first request to the sixth, less the
	// watcher's 5 ms of lateness on the first.
	if span := sixth.Sub(first); first.IsZero() || span < 2400*time.Millisecond {
		t.Errorf("six requests went out within %v of each other; two replicas sharing 2 a second need at least 2.5 s", span)
	}
}
