package store

import (
	"context"
	"time"
)

// Backlog is the work a store holds that is not finished yet: the dispatch
// queue, and events on their way to the log and to publishers. It is what
// an operator watches to see whether a replica keeps up, so every figure is
// read from the store, shared by all replicas, and not from one process's
// memory.
type Backlog struct {
	// Batches counts unfinished batches by state: BatchPending,
	// BatchInFlight and BatchAmbiguous (done batches are not counted).
	Batches map[BatchState]int
	// DueBatches counts batches a dispatcher may claim at the time given:
	// pending or ambiguous and due, or in flight with an expired lease.
	DueBatches int
	// OldestDue is when the longest-waiting of DueBatches became due; zero
	// when none is due. Its age is how far dispatch lags behind.
	OldestDue time.Time
	// OutboxEvents counts stored events not yet given a log position.
	OutboxEvents int
	// LastPosition is the position of the last event of the log.
	LastPosition int64
	// Published is how far each publisher has got, by publisher name.
	Published map[string]int64
}

// BacklogStore reads the backlog.
type BacklogStore interface {
	// Backlog reads the backlog as of now. Each count is one indexed read:
	// cheap enough for every metrics scrape.
	Backlog(ctx context.Context, now time.Time) (Backlog, error)
}
