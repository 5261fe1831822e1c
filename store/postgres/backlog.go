package postgres

import (
	"context"
	"time"

	"github.com/ibmail/ibmail/store"
)

// backlogSQL reads the whole backlog in one statement, hence from one
// snapshot. The queue parts read only the partial indexes of unfinished
// batches (send_batches_due, send_batches_leased), never the done batches
// that pile up forever.
const backlogSQL = `
WITH queued AS (
	SELECT count(*) FILTER (WHERE state = 1) AS pending,
	       count(*) FILTER (WHERE state = 3) AS ambiguous,
	       count(*) FILTER (WHERE next_attempt_time <= $1) AS due,
	       min(next_attempt_time) FILTER (WHERE next_attempt_time <= $1) AS oldest
	FROM send_batches WHERE state IN (1, 3)
), leased AS (
	SELECT count(*) AS in_flight,
	       count(*) FILTER (WHERE lease_expiry < $1) AS due,
	       min(lease_expiry) FILTER (WHERE lease_expiry < $1) AS oldest
	FROM send_batches WHERE state = 2
)
SELECT q.pending, q.ambiguous, l.in_flight, q.due + l.due, least(q.oldest, l.oldest),
       (SELECT count(*) FROM event_outbox),
       (SELECT coalesce(max(position), 0) FROM event_log),
       (SELECT coalesce(jsonb_object_agg(name, position), '{}') FROM event_cursors)
FROM queued q, leased l`

// Backlog reads the dispatch queue and the event backlog.
func (s *Store) Backlog(ctx context.Context, now time.Time) (store.Backlog, error) {
	var (
		b                            store.Backlog
		pending, ambiguous, inFlight int
		oldest                       *time.Time
	)
	err := s.run(ctx, "backlog", func() error {
		b = store.Backlog{Published: map[string]int64{}}
		return s.pool.QueryRow(ctx, backlogSQL, now).Scan(&pending, &ambiguous, &inFlight, &b.DueBatches, &oldest,
			&b.OutboxEvents, &b.LastPosition, &b.Published)
	})
	if err != nil {
		return store.Backlog{}, err
	}
	b.Batches = map[store.BatchState]int{
		store.BatchPending:   pending,
		store.BatchAmbiguous: ambiguous,
		store.BatchInFlight:  inFlight,
	}
	b.OldestDue = fromNullTime(oldest)
	return b, nil
}
