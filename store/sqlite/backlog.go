package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/ibmail/ibmail/store"
)

// The queue queries read only the partial indexes of unfinished batches
// (send_batches_due, send_batches_leased), never the done batches that pile
// up forever.
const (
	queuedBatchesSQL = `SELECT
		COUNT(*) FILTER (WHERE state = 1),
		COUNT(*) FILTER (WHERE state = 3),
		COUNT(*) FILTER (WHERE next_attempt_time <= ?1),
		MIN(next_attempt_time) FILTER (WHERE next_attempt_time <= ?1)
		FROM send_batches WHERE state IN (1, 3)`
	leasedBatchesSQL = `SELECT
		COUNT(*),
		COUNT(*) FILTER (WHERE lease_expiry < ?1),
		MIN(lease_expiry) FILTER (WHERE lease_expiry < ?1)
		FROM send_batches WHERE state = 2`
)

// Backlog reads the dispatch queue and the event backlog in one read
// transaction, so that the figures belong to one moment.
func (s *Store) Backlog(ctx context.Context, now time.Time) (store.Backlog, error) {
	b := store.Backlog{Batches: map[store.BatchState]int{}, Published: map[string]int64{}}
	tx, err := s.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return b, readErr(ctx, "backlog", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var (
		pending, ambiguous, dueQueued, inFlight, dueLeased int
		oldestQueued, oldestLeased, last                   sql.NullInt64
	)
	if err := tx.QueryRowContext(ctx, queuedBatchesSQL, micros(now)).Scan(&pending, &ambiguous, &dueQueued, &oldestQueued); err != nil {
		return b, readErr(ctx, "backlog: queued batches", err)
	}
	if err := tx.QueryRowContext(ctx, leasedBatchesSQL, micros(now)).Scan(&inFlight, &dueLeased, &oldestLeased); err != nil {
		return b, readErr(ctx, "backlog: leased batches", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_outbox`).Scan(&b.OutboxEvents); err != nil {
		return b, readErr(ctx, "backlog: outbox", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT MAX(position) FROM event_log`).Scan(&last); err != nil {
		return b, readErr(ctx, "backlog: last position", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, position FROM event_cursors`)
	if err != nil {
		return b, readErr(ctx, "backlog: publishers", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var pos int64
		if err := rows.Scan(&name, &pos); err != nil {
			return b, readErr(ctx, "backlog: publishers", err)
		}
		b.Published[name] = pos
	}
	if err := rows.Err(); err != nil {
		return b, readErr(ctx, "backlog: publishers", err)
	}
	b.Batches[store.BatchPending] = pending
	b.Batches[store.BatchAmbiguous] = ambiguous
	b.Batches[store.BatchInFlight] = inFlight
	b.DueBatches = dueQueued + dueLeased
	b.OldestDue = oldestOf(oldestQueued, oldestLeased)
	b.LastPosition = last.Int64
	return b, nil
}

// oldestOf is the earlier of two optional times; zero when neither is set.
func oldestOf(a, b sql.NullInt64) time.Time {
	switch {
	case a.Valid && b.Valid:
		return fromMicros(min(a.Int64, b.Int64))
	case a.Valid:
		return fromMicros(a.Int64)
	case b.Valid:
		return fromMicros(b.Int64)
	}
	return time.Time{}
}
