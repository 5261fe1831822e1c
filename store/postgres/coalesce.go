package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ibmail/ibmail/store"
)

// Concurrent IngestReports calls are merged into one transaction, as the
// SQLite writer's group commit merges them, and so are IngestDomainEvents
// calls: a webhook body of one report otherwise costs PostgreSQL a whole
// statement of many CTEs, a commit and its WAL flush for one row, which is
// what bounds one-report bodies (BenchmarkWebhookIngest1). Merged, a few
// dozen bodies share one of each, and a merge of sixteen reports or more
// goes by COPY.
//
// Exactly-once is unchanged: the merge is one call as far as the store is
// concerned, whose reports repeating a key are stored once (the first in
// the merge's order, which is one of the calls' orders), and the unique
// indexes still decide between replicas. The soft-bounce work is each
// call's own (store.SoftBounceWorkOf), applied in the merge's order, as if
// the calls had run one after the other (see ingestNow).

const (
	// maxMergedReports bounds one merged transaction: past a couple of
	// thousand rows the commit is amortised, and a bigger one only keeps
	// the calls at its front waiting.
	maxMergedReports = 2000
	// maxIngestFlushes is how many merged transactions run at once: while
	// one waits for its commit's flush, another can be written, and the
	// calls arriving meanwhile gather for the next.
	maxIngestFlushes = 2
)

// ingestCall is one call waiting in an ingestQueue, of items: reports or
// domain events.
type ingestCall[T any] struct {
	ctx      context.Context
	items    []T
	rejected []store.RejectedPayload
	state    atomic.Int32 // stateQueued, stateTaken or stateCancelled
	done     chan struct{}
	res      store.IngestResult
	err      error
}

// The states of an ingestCall: the flusher and a caller whose context
// ends race for a queued call, and exactly one of them wins.
const (
	stateQueued int32 = iota
	stateTaken
	stateCancelled
)

// ingestQueue merges the calls of one kind of report (a call with both
// kinds is not merged: its two statements could deadlock with another's),
// or of domain events.
type ingestQueue[T any] struct {
	// write stores the items of calls, merged (calls are their lengths,
	// in order; nil: one call), in one transaction; reachedBy names the
	// call of each soft-bounce limit reached.
	write func(ctx context.Context, items []T, rejected []store.RejectedPayload, calls []int) (res store.IngestResult, reachedBy []int, err error)
	// isEvent says whether a stored item made an event.
	isEvent func(*T) bool

	mu       sync.Mutex
	pending  []*ingestCall[T]
	flushing int
	// flushes counts merged transactions, so that tests can see calls
	// share one.
	flushes atomic.Int64
}

// ingest queues a call and waits for its result. A caller whose context
// ends while the call is queued gets the context's error and the call is
// never written; once a flush has taken it, the caller waits for its
// commit, so that a success is never reported as a failure.
func (q *ingestQueue[T]) ingest(ctx context.Context, items []T, rejected []store.RejectedPayload) (store.IngestResult, error) {
	// A call whose context has already ended is never queued: a flush
	// could take it before the select below saw the end, and write it.
	if err := ctx.Err(); err != nil {
		return store.IngestResult{}, err
	}
	c := &ingestCall[T]{ctx: ctx, items: items, rejected: rejected, done: make(chan struct{})}
	q.mu.Lock()
	q.pending = append(q.pending, c)
	if q.flushing < maxIngestFlushes {
		q.flushing++
		go q.flush()
	}
	q.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		if c.state.CompareAndSwap(stateQueued, stateCancelled) {
			return store.IngestResult{}, ctx.Err()
		}
		<-c.done
	}
	return c.res, c.err
}

// flush writes merged transactions until no call is pending.
func (q *ingestQueue[T]) flush() {
	var batch []*ingestCall[T]
	for {
		batch = q.take(batch[:0])
		if len(batch) == 0 {
			return
		}
		q.writeMerged(batch)
		clear(batch)
	}
}

// take claims pending calls up to maxMergedReports (at least one), or
// ends the flush when there are none.
func (q *ingestQueue[T]) take(batch []*ingestCall[T]) []*ingestCall[T] {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(batch) == 0 {
		if len(q.pending) == 0 {
			q.flushing--
			return batch
		}
		n, rows := 0, 0
		for ; n < len(q.pending); n++ {
			c := q.pending[n]
			if len(batch) > 0 && rows+len(c.items) > maxMergedReports {
				break
			}
			// A call cancelled by its caller is dropped unanswered: its
			// caller has already returned.
			if c.state.CompareAndSwap(stateQueued, stateTaken) {
				batch = append(batch, c)
				rows += len(c.items)
			}
		}
		rest := copy(q.pending, q.pending[n:])
		clear(q.pending[rest:])
		q.pending = q.pending[:rest]
	}
	return batch
}

// writeMerged stores batch as one call and gives each its share of the
// result.
// If that fails, the failure may belong to one call, so each is written
// again alone: only the calls that fail on their own get an error.
func (q *ingestQueue[T]) writeMerged(batch []*ingestCall[T]) {
	defer func() {
		for _, c := range batch {
			close(c.done)
		}
	}()
	ctx, cancel := mergedContext(batch)
	defer cancel()
	q.flushes.Add(1)
	if len(batch) == 1 {
		c := batch[0]
		c.res, _, c.err = q.write(ctx, c.items, c.rejected, nil)
		return
	}
	var items []T
	var rejected []store.RejectedPayload
	calls := make([]int, len(batch))
	for i, c := range batch {
		items = append(items, c.items...)
		rejected = append(rejected, c.rejected...)
		calls[i] = len(c.items)
	}
	res, reachedBy, err := q.write(ctx, items, rejected, calls)
	if err != nil {
		for _, c := range batch {
			c.res, _, c.err = q.write(ctx, c.items, c.rejected, nil)
		}
		return
	}
	splitResult(batch, res, reachedBy, q.isEvent)
}

// mergedContext is the context of a merged transaction: no one caller
// ending its own may abort the others' (nor its own, once taken: a
// success is never reported as a failure), but the transaction ends by
// the latest deadline of its callers, if they all have one.
func mergedContext[T any](batch []*ingestCall[T]) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(batch[0].ctx)
	var latest time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			return ctx, func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(ctx, latest)
}

// splitResult gives each call of batch its part of res, the result of
// their reports merged in batch's order; reachedBy names the call of each
// limit reached.
func splitResult[T any](batch []*ingestCall[T], res store.IngestResult, reachedBy []int, isEvent func(*T) bool) {
	at := 0
	for _, c := range batch {
		n := len(c.items)
		c.res = store.IngestResult{Stored: res.Stored[at : at+n : at+n]}
		if res.IDs != nil {
			c.res.IDs = res.IDs[at : at+n : at+n]
		}
		for i, stored := range c.res.Stored {
			if !stored {
				c.res.Duplicates++
				continue
			}
			c.res.Accepted++
			if isEvent(&c.items[i]) {
				c.res.Events++
			}
		}
		at += n
	}
	for i, r := range res.SoftBounceLimitsReached {
		c := batch[reachedBy[i]]
		c.res.SoftBounceLimitsReached = append(c.res.SoftBounceLimitsReached, r)
	}
}
