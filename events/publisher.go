package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ibmail/ibmail/readcheck"
	"github.com/ibmail/ibmail/store"
)

// Defaults of PublisherOptions.
const (
	DefaultStream        = "IBMAIL_EVENTS"
	DefaultSubjectPrefix = "ibmail.events"
)

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	Store store.EventLogStore
	// Conn is the NATS connection; the Publisher does not close it.
	Conn *nats.Conn
	// Stream is the JetStream stream, created if missing; "" means
	// DefaultStream.
	Stream string
	// SubjectPrefix starts every subject; "" means DefaultSubjectPrefix.
	SubjectPrefix string
	// Owner names this process in the lease; unique among processes
	// sharing the store.
	Owner string
	// Lease is how long the publisher's lease lasts unless renewed: how
	// long publishing stands still after its publisher died. It must stay
	// well under the stream's duplicate window (two minutes by default), so
	// that what a dead publisher left unmarked and its successor publishes
	// again is still recognised as a duplicate. 0 means DefaultLease.
	Lease time.Duration
	// Poll is how often the log is looked at when Sequenced gives no
	// signal; 0 means DefaultPoll.
	Poll time.Duration
	// Batch bounds the events read from the log, and published before
	// their position is recorded, at a time; 0 means 256.
	Batch int
	// AckTimeout bounds the wait for JetStream's acknowledgement of one
	// message; 0 means 10 seconds.
	AckTimeout time.Duration
	// Sequenced, when set, returns a channel closed when the log has grown
	// (Sequencer.Changed), so that events go out at once.
	Sequenced func() <-chan struct{}
	Logger    *slog.Logger
}

// Publisher publishes the event log to a JetStream stream, at least once
// and in order of position, while it holds its lease in the store. It
// records how far it has got in the store after JetStream acknowledged the
// messages, so that a crash in between makes its successor publish them
// again: each carries its event id as Nats-Msg-Id, which JetStream
// deduplicates within the stream's duplicate window.
//
// Messages go out asynchronously, but never two of one profile at once: a
// window of messages in flight ends before the next event of a profile
// already in it. Whatever fails in a window, a profile's next event is only
// sent once its previous one is stored in the stream, so the order of each
// profile's events holds in the stream even across failures and retries.
type Publisher struct {
	opts  PublisherOptions
	js    jetstream.JetStream
	lease *lease
	name  string

	streamReady bool
	// unreadable accounts for the events skipped because they cannot be
	// shown: published, they would be refused again and again, and every
	// later event would wait behind them.
	unreadable *readcheck.Skipper

	// afterPublish, set by tests, runs once a batch is published and before
	// its position is recorded; an error ends the step right there, leaving
	// the batch unrecorded as a crash would.
	afterPublish func() error
}

// NewPublisher returns a Publisher; Run runs it.
func NewPublisher(opts PublisherOptions) (*Publisher, error) {
	if opts.Store == nil || opts.Conn == nil || opts.Owner == "" {
		return nil, errors.New("events: Store, Conn and Owner are required")
	}
	if opts.Stream == "" {
		opts.Stream = DefaultStream
	}
	if opts.SubjectPrefix == "" {
		opts.SubjectPrefix = DefaultSubjectPrefix
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Batch <= 0 {
		opts.Batch = 256
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(opts.Conn,
		jetstream.WithPublishAsyncTimeout(opts.AckTimeout),
		jetstream.WithPublishAsyncMaxPending(opts.Batch))
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	name := PublisherName(opts.Stream)
	return &Publisher{opts: opts, js: js, lease: newLease(opts.Store, name, opts.Owner, opts.Lease), name: name,
		unreadable: readcheck.NewSkipper("event", opts.Logger.With(slog.String("stream", opts.Stream)))}, nil
}

// PublisherName is the name of the lease, and of the position in the store,
// of the publisher to a stream. Each stream has its own: pointed at a new
// stream, ibmail publishes the whole log to it from the start.
func PublisherName(stream string) string { return "nats:" + stream }

// Run publishes until ctx ends, then gives the lease back so that another
// replica takes over at once. NATS or the store failing makes it retry,
// backing off up to a few seconds; it returns nil when ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	log := p.opts.Logger.With(slog.String("stream", p.opts.Stream))
	var (
		failures int
		t        = time.NewTimer(0)
	)
	defer t.Stop()
	for {
		var sequenced <-chan struct{}
		if p.opts.Sequenced != nil {
			sequenced = p.opts.Sequenced() // before the step: a signal during it is not lost
		}
		select {
		case <-ctx.Done():
			if err := p.lease.release(); err != nil {
				log.Warn("event publisher: releasing the lease failed; another replica takes over when it runs out", slog.Any("error", err))
			}
			return nil
		case <-t.C:
		case <-sequenced:
			t.Stop()
		}
		err := p.step(ctx)
		delay := p.opts.Poll
		switch {
		case err != nil && ctx.Err() == nil:
			if failures == 0 {
				log.Warn("event publisher: failing; retrying", slog.Any("error", err))
			}
			failures++
			delay = min(p.opts.Poll<<min(failures, 8), 5*time.Second)
		case err == nil && failures > 0:
			failures = 0
			log.Info("event publisher: publishing again")
		}
		t.Reset(delay)
	}
}

// step publishes what the log holds past this publisher's position, if it
// holds the lease.
func (p *Publisher) step(ctx context.Context) error {
	held, err := p.lease.hold(ctx)
	if err != nil || !held {
		return err
	}
	if !p.streamReady {
		if err := p.EnsureStream(ctx); err != nil {
			return err
		}
		p.streamReady = true
	}
	cursor, err := p.opts.Store.PublishedPosition(ctx, p.name)
	if err != nil {
		return err
	}
	for {
		// Renews the lease on a long drain, and stops acting on one that
		// this process can no longer be sure of.
		if held, err := p.lease.hold(ctx); err != nil || !held || !p.lease.valid() {
			return err
		}
		evs, err := p.opts.Store.ReadEventLog(ctx, store.EventLogQuery{After: cursor, Limit: p.opts.Batch})
		if err != nil || len(evs) == 0 {
			return err
		}
		last, pubErr := p.publish(ctx, evs)
		if p.afterPublish != nil {
			if err := p.afterPublish(); err != nil {
				return err
			}
		}
		if last > cursor {
			err := p.opts.Store.MarkPublished(ctx, p.name, p.opts.Owner, last)
			if errors.Is(err, store.ErrLeaseLost) {
				p.lease.lost()
				p.opts.Logger.Info("event publisher: lease taken over by another replica", slog.String("stream", p.opts.Stream))
				return nil
			}
			if err != nil {
				return err
			}
			cursor = last
		}
		if pubErr != nil {
			return pubErr
		}
	}
}

// publish sends evs in windows of distinct profiles and returns the last
// position up to which every event is stored in the stream.
func (p *Publisher) publish(ctx context.Context, evs []store.LoggedEvent) (int64, error) {
	var last int64
	for len(evs) > 0 {
		n := windowLen(evs)
		acked, err := p.publishWindow(ctx, evs[:n])
		if acked > 0 {
			last = evs[acked-1].Position
		}
		if err != nil {
			return last, err
		}
		evs = evs[n:]
	}
	return last, nil
}

// windowLen is how many of evs, from the first, belong to distinct
// profiles: those may be in flight together.
func windowLen(evs []store.LoggedEvent) int {
	seen := make(map[string]struct{}, len(evs))
	for i, e := range evs {
		if _, dup := seen[e.ProfileID]; dup {
			return i
		}
		seen[e.ProfileID] = struct{}{}
	}
	return len(evs)
}

// publishWindow publishes evs asynchronously, waits for every answer, and
// returns how many of them, from the first, are done with: stored by
// JetStream (as new messages or as duplicates of ones it had) or skipped
// because they cannot be shown, so that the position moves past them.
func (p *Publisher) publishWindow(ctx context.Context, evs []store.LoggedEvent) (int, error) {
	// futures[i] is nil for an event skipped; only the first sent ones
	// have an entry.
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	var sendErr error
	for _, e := range evs {
		msg, err := p.message(e)
		if errors.Is(err, readcheck.ErrUnreadable) {
			p.unreadable.Skip(ctx, MessageID(e.Event), err)
			futures = append(futures, nil)
			continue
		}
		if err == nil {
			var f jetstream.PubAckFuture
			if f, err = p.js.PublishMsgAsync(msg); err == nil {
				futures = append(futures, f)
				continue
			}
		}
		sendErr = fmt.Errorf("publish event %d: %w", e.ID, err)
		break
	}
	acked, contiguous := 0, true
	var ackErr error
	for i, f := range futures {
		if f == nil {
			if contiguous {
				acked++
			}
			continue
		}
		select {
		case <-f.Ok():
			if contiguous {
				acked++
			}
		case err := <-f.Err():
			contiguous = false
			if ackErr == nil {
				ackErr = fmt.Errorf("publish event %d: %w", evs[i].ID, err)
			}
		case <-ctx.Done():
			return acked, ctx.Err()
		}
	}
	return acked, errors.Join(ackErr, sendErr)
}

// message builds an event's message: its payload, subject and headers.
func (p *Publisher) message(e store.LoggedEvent) (*nats.Msg, error) {
	data, err := Payload(e.Event)
	if err != nil {
		return nil, err
	}
	// The server would refuse a message above its limit on every try.
	if max := p.opts.Conn.MaxPayload(); max > 0 && int64(len(data)) > max {
		return nil, readcheck.Unreadable(fmt.Errorf("the message takes %d bytes; the NATS server takes at most %d", len(data), max))
	}
	msg := nats.NewMsg(Subject(p.opts.SubjectPrefix, e.Name))
	msg.Data = data
	if e.Retraction {
		msg.Header.Set(jetstream.MsgIDHeader, RetractionMessageID(e.Event))
		msg.Header.Set(RetractionHeader, "true")
	} else {
		msg.Header.Set(jetstream.MsgIDHeader, MessageID(e.Event))
	}
	// Refused rather than stored in another stream that happens to take
	// the subject.
	msg.Header.Set(jetstream.ExpectedStreamHeader, p.opts.Stream)
	msg.Header.Set(PositionHeader, strconv.FormatInt(e.Position, 10))
	return msg, nil
}
