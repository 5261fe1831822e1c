// Package events moves stored events out of the store: the Sequencer gives
// every event its position in the event log (see store.EventLogStore), and
// the Publisher publishes the log, in order, to a NATS JetStream stream.
//
// Both run in every replica and act only under a lease in the store, so
// that one replica at a time sequences and one at a time publishes; when a
// holder dies, another takes over once its lease has run out.
package events

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ibmail/ibmail/store"
)

// Defaults of SequencerOptions and PublisherOptions.
const (
	DefaultLease = 15 * time.Second
	DefaultPoll  = 100 * time.Millisecond
)

// SequencerOptions configure a Sequencer.
type SequencerOptions struct {
	Store store.EventLogStore
	// Owner names this process in the lease; unique among processes
	// sharing the store.
	Owner string
	// Lease is how long the lease lasts unless renewed: how long the log
	// stands still after its sequencer died. 0 means DefaultLease.
	Lease time.Duration
	// Poll is how often the outbox is looked at. Ingest does not wake the
	// sequencer, so it is also the delay before a new event reaches
	// watchers. 0 means DefaultPoll.
	Poll time.Duration
	// Batch bounds the events sequenced in one transaction; 0 means 500.
	Batch  int
	Logger *slog.Logger
}

// Sequencer moves events from the store's outbox to the event log while it
// holds store.SequencerLease. It runs whether or not events are published:
// the log is what WatchEvents reads, and it is what keeps the outbox empty.
type Sequencer struct {
	opts  SequencerOptions
	lease *lease

	mu      sync.Mutex
	changed chan struct{}
}

// NewSequencer returns a Sequencer; Run runs it.
func NewSequencer(opts SequencerOptions) *Sequencer {
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sequencer{
		opts:    opts,
		lease:   newLease(opts.Store, store.SequencerLease, opts.Owner, opts.Lease),
		changed: make(chan struct{}),
	}
}

// Changed returns a channel that is closed when this Sequencer next adds
// events to the log, so that readers in this process learn of them at
// once. Events sequenced by another replica send no such signal: readers
// must also poll.
func (s *Sequencer) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Sequencer) broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

// Run sequences until ctx ends, then gives the lease back so that another
// replica takes over at once. It returns nil when ctx ends.
func (s *Sequencer) Run(ctx context.Context) error {
	log := s.opts.Logger
	var failing bool // logs a run of failures once, and the recovery
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.lease.release(); err != nil {
				log.Warn("event sequencer: releasing the lease failed; another replica takes over when it runs out", slog.Any("error", err))
			}
			return nil
		case <-t.C:
		}
		n, err := s.step(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			log.Warn("event sequencer: failing; retrying", slog.Any("error", err))
		case err == nil && failing:
			failing = false
			log.Info("event sequencer: working again")
		}
		if n == s.opts.Batch {
			t.Reset(0) // more is waiting
		} else {
			t.Reset(s.opts.Poll)
		}
	}
}

// step sequences one batch if this process holds the lease.
func (s *Sequencer) step(ctx context.Context) (int, error) {
	held, err := s.lease.hold(ctx)
	if err != nil || !held {
		return 0, err
	}
	n, err := s.opts.Store.SequenceEvents(ctx, s.opts.Owner, s.opts.Batch)
	if errors.Is(err, store.ErrLeaseLost) {
		s.lease.lost()
		s.opts.Logger.Info("event sequencer: lease taken over by another replica")
		return 0, nil
	}
	if n > 0 {
		s.broadcast()
	}
	return n, err
}
