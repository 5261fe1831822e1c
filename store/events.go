package store

import (
	"context"
	"time"
)

// The event log gives every stored event a position: 1, 2, 3, ... in the
// order in which events became visible to readers, which is the order every
// consumer of events sees (WatchEvents, the NATS publisher).
//
// Ids cannot serve as positions. PostgreSQL draws them from a sequence
// before the transaction commits, so across replicas a lower id can commit
// after a higher one, and a reader that had gone past the higher id would
// skip it. Instead, IngestReports writes each new event's id to an outbox in
// the transaction that stores the event, and a single sequencer, holding
// SequencerLease, moves committed outbox entries to the log, giving them the
// next positions in one transaction. Positions are therefore assigned in
// commit-visible order, and since one sequencer's transactions follow each
// other, a reader sees a gapless prefix of the log: position n+1 is never
// visible before n.

// SequencerLease names the lease under which one process at a time takes
// events from the outbox into the log.
const SequencerLease = "events.sequencer"

// LoggedEvent is an event with its position in the event log.
type LoggedEvent struct {
	Position int64
	// Retraction says that this entry retracts Event (whose Retraction is
	// set) rather than adds it.
	Retraction bool
	Event
}

// EventLogQuery selects events of the log in order of position.
type EventLogQuery struct {
	After int64    // only positions greater than this; 0: from the first
	Names []string // empty: all
	Limit int
}

// EventLogStore keeps the outbox of events not yet sequenced, the event
// log, the leases that make one process at a time sequence (or publish), and
// how far each publisher has got.
//
// A lease is held by the owner who last acquired it until now+ttl as the
// acquiring caller's clock tells; an expired lease may be acquired by
// anyone. The operations that need a lease check only that owner holds it,
// not its expiry: an owner whose lease ran out but was not taken over is
// still the only one acting, and one that was taken over is refused with
// ErrLeaseLost.
type EventLogStore interface {
	// AcquireLease makes owner the holder of the lease name until now+ttl
	// if nobody holds it, owner holds it already (a renewal), or its holder's
	// time has run out (a takeover), and reports whether owner holds it.
	AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives up the lease name if owner holds it, so that
	// another process may take it at once; otherwise it does nothing.
	ReleaseLease(ctx context.Context, name, owner string) error
	// SequenceEvents moves up to limit events from the outbox to the log, in
	// order of id among those committed, with the positions that follow the
	// last one, and says how many it moved. owner must hold SequencerLease
	// (else ErrLeaseLost).
	SequenceEvents(ctx context.Context, owner string, limit int) (int, error)
	// ReadEventLog returns up to q.Limit events of the log after q.After,
	// in order of position.
	ReadEventLog(ctx context.Context, q EventLogQuery) ([]LoggedEvent, error)
	// LastEventPosition is the position of the last event of the log; 0
	// when the log is empty.
	LastEventPosition(ctx context.Context) (int64, error)
	// PublishedPosition is how far the publisher name has got: every event
	// up to that position is published. 0 when it has published nothing.
	PublishedPosition(ctx context.Context, name string) (int64, error)
	// MarkPublished records that the publisher name has published every
	// event up to position. owner must hold the lease name (else
	// ErrLeaseLost). The position only moves forward: a lower one leaves it
	// as it is. A position past the end of the log is refused.
	MarkPublished(ctx context.Context, name, owner string, position int64) error
}
