package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ibmail/ibmail/store"
)

// Concurrent IngestReports calls are merged into one transaction, as the
// SQLite writer's group commit merges them: a webhook body of one report
// otherwise costs PostgreSQL a whole statement of many CTEs, a commit and
// its WAL flush for one row, which is what bounds one-report bodies
// (BenchmarkWebhookIngest1). Merged, a few dozen bodies share one of each,
// and a merge of sixteen reports or more goes by COPY.
//
// Exactly-once is unchanged: the merge is one call as far as the store is
// concerned, whose reports repeating a key are stored once (the first in
// the merge's order, which is one of the calls' orders), and the unique
// indexes still decide between replicas. A merged call's soft-bounce work
// is that of its reports in the merge's order (store.SoftBounceWorkOf),
// which is the work of the calls one after the other in that order.

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

// ingestCall is one IngestReports call waiting in an ingestQueue.
type ingestCall struct {
	ctx      context.Context
	reports  []store.Report
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
// kinds is not merged: its two statements could deadlock with another's).
type ingestQueue struct {
	s        *Store
	mu       sync.Mutex
	pending  []*ingestCall
	flushing int
	// flushes counts merged transactions, so that tests can see calls
	// share one.
	flushes atomic.Int64
}

// ingest queues a call and waits for its result. A caller whose context
// ends while the call is queued gets the context's error and the call is
// never written; once a flush has taken it, the caller waits for its
// commit, so that a success is never reported as a failure.
func (q *ingestQueue) ingest(ctx context.Context, reports []store.Report, rejected []store.RejectedPayload) (store.IngestResult, error) {
	c := &ingestCall{ctx: ctx, reports: reports, rejected: rejected, done: make(chan struct{})}
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
func (q *ingestQueue) flush() {
	var batch []*ingestCall
	for {
		batch = q.take(batch[:0])
		if len(batch) == 0 {
			return
		}
		q.write(batch)
		clear(batch)
	}
}

// take claims pending calls up to maxMergedReports (at least one), or
// ends the flush when there are none.
func (q *ingestQueue) take(batch []*ingestCall) []*ingestCall {
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
			if len(batch) > 0 && rows+len(c.reports) > maxMergedReports {
				break
			}
			// A call cancelled by its caller is dropped unanswered: its
			// caller has already returned.
			if c.state.CompareAndSwap(stateQueued, stateTaken) {
				batch = append(batch, c)
				rows += len(c.reports)
			}
		}
		rest := copy(q.pending, q.pending[n:])
		clear(q.pending[rest:])
		q.pending = q.pending[:rest]
	}
	return batch
}

// write stores batch as one call and gives each its share of the result.
// If that fails, the failure may belong to one call, so each is written
// again alone: only the calls that fail on their own get an error.
func (q *ingestQueue) write(batch []*ingestCall) {
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
		c.res, _, c.err = q.s.ingestNow(ctx, c.reports, c.rejected, nil)
		return
	}
	var reports []store.Report
	var rejected []store.RejectedPayload
	calls := make([]int, len(batch))
	for i, c := range batch {
		reports = append(reports, c.reports...)
		rejected = append(rejected, c.rejected...)
		calls[i] = len(c.reports)
	}
	res, reachedBy, err := q.s.ingestNow(ctx, reports, rejected, calls)
	if err != nil {
		for _, c := range batch {
			c.res, _, c.err = q.s.ingestNow(ctx, c.reports, c.rejected, nil)
		}
		return
	}
	splitResult(batch, res, reachedBy)
}

// mergedContext is the context of a merged transaction: no one caller
// ending its own may abort the others' (nor its own, once taken: a
// success is never reported as a failure), but the transaction ends by
// the latest deadline of its callers, if they all have one.
func mergedContext(batch []*ingestCall) (context.Context, context.CancelFunc) {
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
func splitResult(batch []*ingestCall, res store.IngestResult, reachedBy []int) {
	at := 0
	for _, c := range batch {
		n := len(c.reports)
		c.res = store.IngestResult{Stored: res.Stored[at : at+n : at+n], IDs: res.IDs[at : at+n : at+n]}
		for i, stored := range c.res.Stored {
			if !stored {
				c.res.Duplicates++
				continue
			}
			c.res.Accepted++
			if c.reports[i].Outcome == store.OutcomeEvent {
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
