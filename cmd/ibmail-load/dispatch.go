package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ibmail/ibmail/dispatch"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/infobip"
	"github.com/ibmail/ibmail/sandbox"
)

const sandboxKey = "ibmail-load-sandbox-key"

// ceilingClients is how many requests the ceiling keeps in flight: the
// dispatcher's concurrency per connection (serve.go).
const ceilingClients = 8

// dispatchSandbox is the sandbox the dispatch phase sends to, in this
// process, posting its reports back to the server as Infobip would.
type dispatchSandbox struct {
	box *sandbox.Sandbox
	srv *httptest.Server
	url string
}

func newDispatchSandbox(recipients int) *dispatchSandbox {
	// MaxLogs keeps every message of the send, so that the sandbox sees a
	// recipient sent twice.
	box := sandbox.New(sandbox.Options{APIKey: sandboxKey, Seed: 1, MaxLogs: recipients + dispatch.MaxRecipientsPerRequest})
	srv := httptest.NewServer(box)
	return &dispatchSandbox{box: box, srv: srv, url: srv.URL}
}

func (s *dispatchSandbox) close() { s.srv.Close(); s.box.Close() }

// sandboxCeiling measures what a sandbox alone takes for d: 1000-recipient
// sends from ceilingClients Infobip clients, reports posted to a receiver
// that discards them (as BenchmarkSandboxCeiling). A fresh sandbox, so
// that the dispatch phase's counts are its own.
func sandboxCeiling(ctx context.Context, d time.Duration) (float64, error) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer sink.Close()
	sb := newDispatchSandbox(1)
	defer sb.close()
	client, err := infobip.New(infobip.Config{BaseURL: sb.url, APIKey: sandboxKey})
	if err != nil {
		return 0, err
	}
	to := make([]infobip.Recipient, dispatch.MaxRecipientsPerRequest)
	for i := range to {
		to[i] = infobip.Recipient{Email: fmt.Sprintf("u%d@example.com", i)}
	}
	var seq atomic.Int64
	n, el, err := closedLoop(ctx, ceilingClients, d, func(ctx context.Context, _, _ int) error {
		_, err := client.Send(ctx, infobip.SendRequest{From: "news@example.com", Subject: "Hello", HTML: "<p>Hi</p>",
			To: to, BulkID: "ceiling-" + strconv.FormatInt(seq.Add(1), 10), NotifyURL: sink.URL, NotifyContentType: "application/json"})
		return err
	})
	if err != nil {
		return 0, err
	}
	return float64(n*int64(len(to))) / el.Seconds(), nil
}

// dispatchPhase measures the sandbox's ceiling, then one send of
// cfg.recipients from CreateSend to every recipient accepted, through the
// server's dispatcher to the sandbox, which posts every report back to
// the server's webhooks meanwhile. It then checks that the sandbox took
// every recipient exactly once and that the store holds every report the
// sandbox posted.
func dispatchPhase(ctx context.Context, cfg config, h *harness, sb *dispatchSandbox, t *table, logf func(string, ...any)) error {
	logf("dispatch: the sandbox's own ceiling, %d clients for %s", ceilingClients, cfg.ceiling)
	ceiling, err := sandboxCeiling(ctx, cfg.ceiling)
	if err != nil {
		return fmt.Errorf("ceiling: %w", err)
	}

	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	conns := ibmailv1.NewConnectionServiceClient(h.conn)
	senders := ibmailv1.NewSenderServiceClient(h.conn)
	sends := ibmailv1.NewSendServiceClient(h.conn)
	connID, senderID := "load-"+run, "load-"+run
	if _, err := conns.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{Id: connID, ApiKey: sandboxKey, BaseUrl: sb.url}}); err != nil {
		return fmt.Errorf("CreateConnection: %w", err)
	}
	if _, err := senders.CreateSender(ctx, &ibmailv1.CreateSenderRequest{Sender: &ibmailv1.Sender{Id: senderID, ConnectionId: connID, FromAddress: "news@example.com"}}); err != nil {
		return fmt.Errorf("CreateSender: %w", err)
	}
	// Sends of at most maxPerSend recipients (CreateSend's bound).
	const maxPerSend = 100_000
	var reqs []*ibmailv1.CreateSendRequest
	for lo := 0; lo < cfg.recipients; lo += maxPerSend {
		hi := min(lo+maxPerSend, cfg.recipients)
		rs := make([]*ibmailv1.RecipientInput, 0, hi-lo)
		for j := lo; j < hi; j++ {
			rs = append(rs, &ibmailv1.RecipientInput{ProfileId: fmt.Sprintf("p-%s-%d", run, j), Email: fmt.Sprintf("u%d-%s@example.com", j, run)})
		}
		reqs = append(reqs, &ibmailv1.CreateSendRequest{SenderId: senderID, Subject: "Hello", Html: "<p>Hi</p>", Recipients: rs})
	}
	mark, err := markStore(ctx, h.store)
	if err != nil {
		return err
	}
	before := sb.box.Stats()
	if err := resetPeakRSS(h.pid); err != nil {
		logf("dispatch: cannot reset the peak RSS (%v)", err)
	}
	logf("dispatch: %d recipients in %d send(s)", cfg.recipients, len(reqs))
	start := time.Now()
	var ids []string
	for _, r := range reqs {
		resp, err := sends.CreateSend(ctx, r)
		if err != nil {
			return fmt.Errorf("CreateSend: %w", err)
		}
		ids = append(ids, resp.GetSend().GetId())
	}
	created := time.Since(start)
	var accepted int64
	for i, id := range ids {
		for {
			got, err := sends.GetSend(ctx, &ibmailv1.GetSendRequest{SendId: id})
			if err != nil {
				return fmt.Errorf("GetSend: %w", err)
			}
			if s := got.GetSend(); s.GetState() == ibmailv1.SendState_SEND_STATE_DONE {
				if want := int64(len(reqs[i].GetRecipients())); int64(s.GetAcceptedCount()) != want {
					return fmt.Errorf("send %s finished with %d of %d recipients accepted: %v", id, s.GetAcceptedCount(), want, s)
				}
				accepted += int64(s.GetAcceptedCount())
				break
			}
			// GetSend counts the send's recipients: poll gently.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	elapsed := time.Since(start)
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	err = sb.box.WaitIdle(waitCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("waiting for the sandbox's reports: %w", err)
	}
	reported := time.Since(start)
	peak, rssErr := peakRSS(h.pid)

	after := sb.box.Stats()
	delta := func(f func(sandbox.Stats) int64) int64 { return f(after) - f(before) }
	var problems []error
	if got := delta(func(s sandbox.Stats) int64 { return s.Recipients }); got != int64(cfg.recipients) {
		problems = append(problems, fmt.Errorf("the sandbox accepted %d recipients, want %d", got, cfg.recipients))
	}
	if got := delta(func(s sandbox.Stats) int64 { return s.DuplicateSends }); got != 0 {
		problems = append(problems, fmt.Errorf("the sandbox got %d recipients more than once", got))
	}
	for name, n := range map[string]int64{
		"report POSTs failed":   delta(func(s sandbox.Stats) int64 { return s.ReportPostFailures }),
		"reports abandoned":     delta(func(s sandbox.Stats) int64 { return s.ReportsAbandoned }),
		"tracking POSTs failed": delta(func(s sandbox.Stats) int64 { return s.TrackingPostFailures }),
	} {
		if n != 0 {
			problems = append(problems, fmt.Errorf("%d %s", n, name))
		}
	}
	posted := storeCounts{
		delivery: delta(func(s sandbox.Stats) int64 { return s.ReportsPosted }),
		tracking: delta(func(s sandbox.Stats) int64 { return s.TrackingPosted }),
	}
	if cfg.afterLoad != nil {
		if err := cfg.afterLoad(ctx, h, "dispatch"); err != nil {
			return err
		}
	}
	got, err := countSince(ctx, h.store, mark, run)
	if err != nil {
		return fmt.Errorf("counting what the store holds: %w", err)
	}
	if err := checkCounts("dispatch: the reports the sandbox posted", got, posted); err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		return err
	}
	rate := float64(accepted) / elapsed.Seconds()
	t.add("dispatch", fmt.Sprintf("sandbox ceiling, %d clients, 1000-recipient requests, %s", ceilingClients, cfg.ceiling), ceiling, "recipients/s")
	t.add("dispatch", fmt.Sprintf("send of %d recipients, CreateSend to all accepted", cfg.recipients), rate, "recipients/s")
	t.add("dispatch", "ratio dispatch/ceiling", rate/ceiling, "")
	t.add("dispatch", "CreateSend", ms(created), "ms")
	t.add("dispatch", "to every report stored", float64(posted.delivery+posted.tracking)/reported.Seconds(), "reports/s")
	t.add("dispatch", "accepted once each, every posted report stored (checked)", float64(posted.delivery+posted.tracking), "reports")
	if rssErr == nil {
		t.add("dispatch", fmt.Sprintf("server peak RSS, the send (%s)", h.memory), float64(peak)/(1<<20), "MiB")
	}
	return nil
}
