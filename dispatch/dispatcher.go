package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ibmail/ibmail/metrics"
	"github.com/ibmail/ibmail/store"
)

// MailerSource gives the Mailer and limits of a connection, and the URLs
// its reports come back to. It is asked again when a connection is not in
// the dispatcher's cache (entries live for a minute), so changed keys and
// limits take effect soon.
type MailerSource func(ctx context.Context, connectionID string) (m Mailer, l Limits, callbacks Callbacks, err error)

// Callbacks are the URLs of this server's webhooks that every request of a
// connection names, each carrying the connection's webhook secret.
type Callbacks struct {
	// NotifyURL receives the delivery reports.
	NotifyURL string
	// TrackingURL receives the tracking reports: complaints, late bounces
	// and unsubscribes always, opens and clicks when the send tracks them.
	TrackingURL string
}

// Options configure a Dispatcher. Zero values take the defaults noted.
type Options struct {
	Store   store.SendStore
	Mailers MailerSource
	// Owner names this dispatcher in leases: unique among the processes
	// sharing a store, and kept across restarts, so that a restarted
	// dispatcher takes its own batches back at once (as ambiguous).
	Owner string
	// Lease is how long a claimed batch stays this dispatcher's unless
	// renewed; 2 minutes.
	Lease time.Duration
	// LeaseRenewal is how often the lease of a batch in hand is renewed;
	// a third of Lease. Negative: never, which only tests of a store out of
	// reach want.
	LeaseRenewal time.Duration
	// RequestTimeout bounds one Infobip request; 30 seconds, and at most
	// half the lease, so that a request is over before another dispatcher
	// may take its batch over.
	RequestTimeout time.Duration
	// Poll is how often the store is asked for due batches when nothing
	// wakes the dispatcher; 1 second.
	Poll time.Duration
	// Workers bounds the batches handled at once; 16.
	Workers int
	// MaxAttempts before a batch's recipients fail; 12.
	MaxAttempts int
	// Backoff between attempts; 1 second doubling up to 5 minutes.
	Backoff Backoff
	// AmbiguityDelay is how long to wait after an ambiguous attempt before
	// asking Infobip's logs about it: long enough for a request Infobip was
	// still working on when the answer was lost to show up there, since a
	// resend after a lookup that came too early would duplicate; 30
	// seconds.
	AmbiguityDelay time.Duration
	// Defaults apply to connections that set no limits: 100 requests per
	// second (Infobip allows 2000) and 4 at once.
	Defaults Limits
	Logger   *slog.Logger
	Now      func() time.Time
}

// Dispatcher hands due batches to Infobip. Run it in one goroutine per
// process; several processes on one store share the work through leases.
type Dispatcher struct {
	opts  Options
	wake  chan struct{}
	slots chan struct{}

	mu    sync.Mutex
	conns map[string]*connState

	handMu sync.Mutex
	inHand map[batchKey]*handling // see lease.go
}

// connState is a connection's mailer with its limits and concurrency
// gate, cached for a while. The rate is shared with the other replicas
// through the store; limiter is this replica's own, for when the store
// cannot say.
type connState struct {
	mailer    Mailer
	callbacks Callbacks
	limits    Limits
	limiter   *rate.Limiter
	gate      chan struct{}
	loaded    time.Time
}

// New returns a Dispatcher.
func New(opts Options) *Dispatcher {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Lease, 2*time.Minute)
	def(&opts.LeaseRenewal, opts.Lease/3)
	def(&opts.RequestTimeout, 30*time.Second)
	def(&opts.Poll, time.Second)
	def(&opts.AmbiguityDelay, 30*time.Second)
	def(&opts.Backoff.Base, time.Second)
	def(&opts.Backoff.Max, 5*time.Minute)
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 12
	}
	if opts.Defaults.RequestsPerSecond <= 0 {
		opts.Defaults.RequestsPerSecond = 100
	}
	if opts.Defaults.Concurrency <= 0 {
		opts.Defaults.Concurrency = 4
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if limit := opts.Lease / 2; opts.RequestTimeout > limit {
		// A request must be over before the renewal made just before it
		// runs out; see handle.
		opts.Logger.Warn("the Infobip request timeout is cut to half the batch lease",
			slog.Duration("lease", opts.Lease), slog.Duration("requestTimeout", limit))
		opts.RequestTimeout = limit
	}
	return &Dispatcher{
		opts:   opts,
		wake:   make(chan struct{}, 1),
		slots:  make(chan struct{}, opts.Workers),
		conns:  make(map[string]*connState),
		inHand: make(map[batchKey]*handling),
	}
}

// Wake tells the dispatcher that new work may be due.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run claims and dispatches batches until ctx ends, then waits for the
// batches in hand: each either completes or is left to its lease.
func (d *Dispatcher) Run(ctx context.Context) error {
	released, err := d.opts.Store.ReleaseLeases(ctx, d.opts.Owner, d.opts.Now())
	if err != nil {
		return fmt.Errorf("dispatch: releasing the leases of an earlier run: %w", err)
	}
	if released > 0 {
		d.opts.Logger.Warn("batches in flight when this dispatcher last stopped are checked in Infobip's logs before any resend",
			slog.Int("batches", released))
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	// launch handles b in a slot already taken, then a newer claim of b in
	// the same slot if one came meanwhile.
	var launch func(b store.ClaimedBatch)
	launch = func(b store.ClaimedBatch) {
		wg.Go(func() {
			log := d.opts.Logger.With(slog.String("send", b.SendID), slog.String("bulkId", b.BulkID), slog.Int("attempt", b.Attempts))
			stop := d.keepLease(ctx, log, b)
			d.handle(ctx, log, b)
			stop()
			if next, ok := d.release(b); ok && ctx.Err() == nil {
				launch(next)
				return
			}
			<-d.slots
			metrics.BatchesInHand.Dec()
			d.Wake()
		})
	}
	ticker := time.NewTicker(d.opts.Poll)
	defer ticker.Stop()
	for {
		free := d.opts.Workers - len(d.slots)
		if free > 0 {
			batches, err := d.opts.Store.ClaimBatches(ctx, d.opts.Owner, d.opts.Now(), d.opts.Lease, free)
			if err != nil && ctx.Err() == nil {
				d.opts.Logger.Error("claiming batches failed", slog.Any("error", err))
			}
			for _, b := range batches {
				if !d.take(b) {
					continue
				}
				d.slots <- struct{}{}
				metrics.BatchesInHand.Inc()
				launch(b)
			}
			if len(batches) == free {
				continue // there may be more due right now
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-ticker.C:
		}
	}
}

// handle takes one claimed batch to a final state or a rescheduled one.
func (d *Dispatcher) handle(ctx context.Context, log *slog.Logger, b store.ClaimedBatch) {
	conn, err := d.connection(ctx, b.Send.ConnectionID)
	if err != nil {
		state := store.BatchPending
		if b.MaybeSent {
			state = store.BatchAmbiguous // still to be checked in the logs
		}
		d.retry(ctx, log, b, state, &Failure{Kind: Retryable, Reason: "connection unusable: " + err.Error()})
		return
	}
	if b.MaybeSent {
		found, err := conn.mailer.LookupBulk(ctx, b.BulkID)
		if err != nil {
			d.retry(ctx, log, b, store.BatchAmbiguous, &Failure{Kind: Ambiguous, Reason: "checking Infobip's logs failed: " + err.Error()})
			return
		}
		if len(found) > 0 {
			log.Info("an earlier attempt reached Infobip; not sending again", slog.Int("logged", len(found)))
			d.complete(ctx, log, b, outcomes(b.Recipients, found, "Infobip's logs for this bulk do not list the recipient"))
			return
		}
	}
	content, err := DecodeContent(b.Send.Content)
	if err != nil {
		d.complete(ctx, log, b, failAll(b.Recipients, store.RecipientFailed, err.Error()))
		return
	}
	req := Request{Content: content, BulkID: b.BulkID, NotifyURL: conn.callbacks.NotifyURL, TrackingURL: conn.callbacks.TrackingURL,
		CallbackData: callbackData(b.SendID)}
	for _, r := range b.Recipients {
		req.Messages = append(req.Messages, Message{Email: r.Email, Placeholders: r.Placeholders})
	}
	if err := d.waitForSlot(ctx, log, b.Send.ConnectionID, conn); err != nil {
		d.retry(ctx, log, b, store.BatchPending, &Failure{Kind: Retryable, Reason: "stopped before sending"})
		return
	}
	select {
	case conn.gate <- struct{}{}:
	case <-ctx.Done():
		d.retry(ctx, log, b, store.BatchPending, &Failure{Kind: Retryable, Reason: "stopped before sending"})
		return
	}
	// Last checks before sending, which cannot be undone. The claim must
	// still be the batch's latest (see lease.go), and the lease is renewed
	// now, so that nobody may take the batch over before this request is
	// over (RequestTimeout is at most half the lease).
	if ctx.Err() != nil {
		<-conn.gate
		d.retry(ctx, log, b, store.BatchPending, &Failure{Kind: Retryable, Reason: "stopped before sending"})
		return
	}
	if d.stale(b) {
		<-conn.gate
		log.Warn("the batch was claimed again while it waited to be sent; not sending on the old claim")
		return
	}
	if err := d.opts.Store.ExtendLease(ctx, d.opts.Owner, b.SendID, b.Seq, d.opts.Now().Add(d.opts.Lease)); err != nil {
		<-conn.gate
		if errors.Is(err, store.ErrLeaseLost) {
			log.Warn("the batch's lease went to another dispatcher while it waited to be sent; not sending")
			return
		}
		log.Error("renewing the lease before sending failed; not sending, the batch is retried after its lease", slog.Any("error", err))
		return
	}
	reqCtx, cancel := context.WithTimeout(ctx, d.opts.RequestTimeout)
	accepted, err := conn.mailer.Send(reqCtx, req)
	cancel()
	<-conn.gate
	metrics.InfobipRequests.WithLabelValues(statusLabel(err)).Inc()
	if err == nil {
		d.complete(ctx, log, b, outcomes(b.Recipients, accepted, "missing from Infobip's answer"))
		return
	}
	f := classify(err)
	switch f.Kind {
	case Permanent:
		state := store.RecipientRejected
		if f.HTTPStatus == 401 || f.HTTPStatus == 403 || (f.HTTPStatus >= 300 && f.HTTPStatus <= 399) {
			// The connection, not the message, is at fault: a wrong key or
			// a base URL that redirects (Infobip never does).
			state = store.RecipientFailed
		}
		log.Warn("Infobip refused the request", slog.Int("status", f.HTTPStatus), slog.String("reason", f.Reason))
		d.complete(ctx, log, b, failAll(b.Recipients, state, f.Reason))
	case Retryable:
		d.retry(ctx, log, b, store.BatchPending, f)
	default:
		d.retry(ctx, log, b, store.BatchAmbiguous, f)
	}
}

// waitForSlot waits until the connection's rate, which every replica
// shares through the store, allows one more request. When the store cannot
// say, this replica's own limiter decides: a store hiccup then slows
// dispatch to this replica's share rather than stopping it.
func (d *Dispatcher) waitForSlot(ctx context.Context, log *slog.Logger, connectionID string, conn *connState) error {
	for {
		wait, err := d.opts.Store.TakeSendSlot(ctx, connectionID, float64(conn.limits.RequestsPerSecond), conn.limits.Concurrency, d.opts.Now())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			log.Warn("the shared send rate could not be read; this replica's own rate applies", slog.Any("error", err))
			return conn.limiter.Wait(ctx)
		}
		if wait == 0 {
			return nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// retry reschedules a batch, or fails its recipients once the attempts are
// spent (saying, for an ambiguous batch, that Infobip may have it: its
// reports still find their recipients through callbackData).
func (d *Dispatcher) retry(ctx context.Context, log *slog.Logger, b store.ClaimedBatch, state store.BatchState, f *Failure) {
	if b.Attempts >= d.opts.MaxAttempts {
		reason := fmt.Sprintf("gave up after %d attempts: %s", b.Attempts, f.Reason)
		if state == store.BatchAmbiguous {
			reason += " (Infobip may have accepted the last attempt)"
		}
		log.Error("giving up on a batch", slog.String("reason", reason))
		d.complete(ctx, log, b, failAll(b.Recipients, store.RecipientFailed, reason))
		return
	}
	kind := "retryable"
	if state == store.BatchAmbiguous {
		kind = "ambiguous"
	}
	metrics.DispatchRetries.WithLabelValues(kind).Inc()
	delay := d.opts.Backoff.Delay(b.Attempts, f.RetryAfter)
	if state == store.BatchAmbiguous {
		delay = max(delay, d.opts.AmbiguityDelay)
	}
	log.Warn("batch attempt failed; will retry", slog.String("reason", f.Reason), slog.Int("status", f.HTTPStatus),
		slog.Bool("ambiguous", state == store.BatchAmbiguous), slog.Duration("in", delay))
	err := d.opts.Store.RescheduleBatch(context.WithoutCancel(ctx), d.opts.Owner, b.SendID, b.Seq, state, d.opts.Now().Add(delay), f.Reason)
	d.noteStoreError(log, err)
}

func (d *Dispatcher) complete(ctx context.Context, log *slog.Logger, b store.ClaimedBatch, out []store.RecipientOutcome) {
	err := d.opts.Store.CompleteBatch(context.WithoutCancel(ctx), d.opts.Owner, b.SendID, b.Seq, out)
	d.noteStoreError(log, err)
	if err == nil {
		for _, o := range out {
			metrics.RecipientsDispatched.WithLabelValues(stateLabel(o.State)).Inc()
		}
	}
}

// statusLabel names the result of an Infobip request in metrics: its HTTP
// status, or "lost" when no answer came.
func statusLabel(err error) string {
	if err == nil {
		return "200"
	}
	if f := classify(err); f.HTTPStatus != 0 {
		return strconv.Itoa(f.HTTPStatus)
	}
	return "lost"
}

func stateLabel(s store.RecipientState) string {
	switch s {
	case store.RecipientAccepted:
		return "accepted"
	case store.RecipientRejected:
		return "rejected"
	case store.RecipientFailed:
		return "failed"
	default:
		return "other"
	}
}

// noteStoreError logs a failed store write. A lost lease is expected after
// a long stall: the new owner checks Infobip's logs before sending, so
// nothing goes twice. Any other failure leaves the batch to its lease.
func (d *Dispatcher) noteStoreError(log *slog.Logger, err error) {
	switch {
	case err == nil:
	case errors.Is(err, store.ErrLeaseLost):
		log.Warn("batch lease lost to another dispatcher; its result is dropped")
	default:
		log.Error("recording a batch result failed; the batch is retried after its lease", slog.Any("error", err))
	}
}

// connection returns the cached state of a connection, loading it when it
// is missing or a minute old.
func (d *Dispatcher) connection(ctx context.Context, id string) (*connState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.conns[id]; ok && d.opts.Now().Sub(c.loaded) < time.Minute {
		return c, nil
	}
	m, lim, callbacks, err := d.opts.Mailers(ctx, id)
	if err != nil {
		return nil, err
	}
	if lim.RequestsPerSecond <= 0 {
		lim.RequestsPerSecond = d.opts.Defaults.RequestsPerSecond
	}
	if lim.Concurrency <= 0 {
		lim.Concurrency = d.opts.Defaults.Concurrency
	}
	c, ok := d.conns[id]
	if !ok || cap(c.gate) != lim.Concurrency {
		c = &connState{gate: make(chan struct{}, lim.Concurrency), limiter: rate.NewLimiter(rate.Limit(lim.RequestsPerSecond), lim.Concurrency)}
		d.conns[id] = c
	}
	c.limiter.SetLimit(rate.Limit(lim.RequestsPerSecond))
	c.mailer, c.callbacks, c.limits, c.loaded = m, callbacks, lim, d.opts.Now()
	return c, nil
}

// outcomes matches Infobip's per-address answer to the batch's recipients.
func outcomes(recipients []store.Recipient, byEmail map[string]Accepted, missing string) []store.RecipientOutcome {
	out := make([]store.RecipientOutcome, len(recipients))
	for i, r := range recipients {
		o := store.RecipientOutcome{Seq: r.Seq, State: store.RecipientFailed, Reason: missing}
		if a, ok := byEmail[strings.ToLower(r.Email)]; ok {
			o = store.RecipientOutcome{Seq: r.Seq, State: store.RecipientAccepted, MessageID: a.MessageID}
			if a.Rejected {
				o.State, o.Reason = store.RecipientRejected, a.Reason
			}
		}
		out[i] = o
	}
	return out
}

func failAll(recipients []store.Recipient, state store.RecipientState, reason string) []store.RecipientOutcome {
	out := make([]store.RecipientOutcome, len(recipients))
	for i, r := range recipients {
		out[i] = store.RecipientOutcome{Seq: r.Seq, State: state, Reason: reason}
	}
	return out
}

func callbackData(sendID string) string {
	b, _ := json.Marshal(CallbackData{SendID: sendID}) // one string cannot fail
	return string(b)
}
