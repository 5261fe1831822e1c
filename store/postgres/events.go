package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

// AcquireLease takes, renews or takes over the lease name; see
// store.EventLogStore. The upsert's WHERE leaves a live lease of another
// owner alone, and then RETURNING gives no row. Two replicas acquiring at
// once queue on the lease row.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	var held bool
	err := s.run(ctx, "acquire lease", func() error {
		err := s.pool.QueryRow(ctx, `INSERT INTO event_leases (name, owner, expiry) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expiry = excluded.expiry
			WHERE event_leases.owner = excluded.owner OR event_leases.expiry < $4
			RETURNING true`, name, owner, now.Add(ttl), now).Scan(&held)
		if errors.Is(err, pgx.ErrNoRows) {
			held = false
			return nil
		}
		return err
	})
	return held, err
}

// ReleaseLease gives up the lease name if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	return s.run(ctx, "release lease", func() error {
		_, err := s.pool.Exec(ctx, `DELETE FROM event_leases WHERE name = $1 AND owner = $2`, name, owner)
		return err
	})
}

// lockLease locks the lease row name for the rest of tx and answers
// ErrLeaseLost unless owner holds it. Holding the row lock until commit is
// what keeps two holders (one taken over while it worked) from ever
// interleaving: the takeover's upsert waits for this transaction, and a
// transaction that waited here sees the row as the takeover left it.
func lockLease(ctx context.Context, tx pgx.Tx, name, owner string) error {
	var holder string
	err := tx.QueryRow(ctx, `SELECT owner FROM event_leases WHERE name = $1 FOR UPDATE`, name).Scan(&holder)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && holder != owner) {
		return fmt.Errorf("lease %s: %w", name, store.ErrLeaseLost)
	}
	return err
}

// sequenceSQL moves the oldest committed outbox entries to the log in one
// statement, and so one snapshot: the entries it deletes are exactly those
// it numbers. The snapshot is taken after lockLease, so MAX(position) counts
// whatever the previous sequencer committed. An entry whose transaction has
// not committed yet is not seen; it is taken by a later call, with a later
// position, whatever its id. An entry is an event's id, or a retraction's
// (see migration 0013), which logs the event it retracts.
const sequenceSQL = `
WITH taken AS (
	DELETE FROM event_outbox
	WHERE event_id IN (SELECT event_id FROM event_outbox ORDER BY event_id LIMIT $1)
	RETURNING event_id
),
last AS (
	SELECT coalesce(max(position), 0) AS position FROM event_log
)
INSERT INTO event_log (position, event_id, name, retraction)
SELECT last.position + row_number() OVER (ORDER BY t.event_id), e.id, e.name, r.id IS NOT NULL
FROM taken t LEFT JOIN event_retractions r ON r.id = t.event_id
JOIN profile_events e ON e.id = coalesce(r.event_id, t.event_id) CROSS JOIN last`

// SequenceEvents moves the oldest committed outbox entries to the log. It
// reads first, so that the usual call, finding the outbox empty, locks and
// writes nothing.
func (s *Store) SequenceEvents(ctx context.Context, owner string, limit int) (int, error) {
	var moved int
	err := s.run(ctx, "sequence events", func() error {
		var (
			holder  *string
			pending bool
		)
		if err := s.pool.QueryRow(ctx, `SELECT (SELECT owner FROM event_leases WHERE name = $1), EXISTS (SELECT 1 FROM event_outbox)`,
			store.SequencerLease).Scan(&holder, &pending); err != nil {
			return err
		}
		if holder == nil || *holder != owner {
			return fmt.Errorf("lease %s: %w", store.SequencerLease, store.ErrLeaseLost)
		}
		if !pending || limit <= 0 {
			moved = 0
			return nil
		}
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := lockLease(ctx, tx, store.SequencerLease, owner); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, sequenceSQL, limit)
			moved = int(tag.RowsAffected())
			return err
		})
	})
	if err != nil {
		return 0, err
	}
	return moved, nil
}

// ReadEventLog returns events of the log after q.After, in order of
// position.
func (s *Store) ReadEventLog(ctx context.Context, q store.EventLogQuery) ([]store.LoggedEvent, error) {
	var args sqlArgs
	query := `SELECT l.position, l.retraction, e.id, e.name, e.time, e.profile_id, e.email, e.params, ` + eventExtrasSQL + `
		FROM event_log l JOIN profile_events e ON e.id = l.event_id` + eventJoinsSQL + ` WHERE l.position > ` + args.add(q.After)
	if names := uniqueNames(q.Names); len(names) > 0 {
		query += ` AND l.name = ANY(` + args.add(names) + `)`
	}
	query += ` ORDER BY l.position LIMIT ` + args.add(limitOf(q.Limit))

	var out []store.LoggedEvent
	err := s.run(ctx, "read event log", func() error {
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.LoggedEvent, error) {
			var (
				e      store.LoggedEvent
				params []byte
				extras eventExtras
			)
			if err := row.Scan(append([]any{&e.Position, &e.Retraction, &e.ID, &e.Name, &e.Time, &e.ProfileID, &e.Email, &params},
				extras.dest()...)...); err != nil {
				return e, err
			}
			extras.apply(&e.Event)
			e.ReportID = e.ID
			e.Time = utc(e.Time)
			m, err := decodeParams(params)
			if err != nil {
				e.Unreadable = "params do not decode: " + err.Error()
			}
			e.Params = m
			return e, nil
		})
		return err
	})
	return out, err
}

// LastEventPosition is the last position of the log, 0 when it is empty.
func (s *Store) LastEventPosition(ctx context.Context) (int64, error) {
	var last int64
	err := s.run(ctx, "last event position", func() error {
		return s.pool.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM event_log`).Scan(&last)
	})
	return last, err
}

// PublishedPosition is how far the publisher name has got.
func (s *Store) PublishedPosition(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := s.run(ctx, "published position", func() error {
		err := s.pool.QueryRow(ctx, `SELECT position FROM event_cursors WHERE name = $1`, name).Scan(&pos)
		if errors.Is(err, pgx.ErrNoRows) {
			pos = 0
			return nil
		}
		return err
	})
	return pos, err
}

// MarkPublished moves the publisher name's cursor forward to position,
// under the lease row's lock like SequenceEvents.
func (s *Store) MarkPublished(ctx context.Context, name, owner string, position int64) error {
	return s.inTx(ctx, "mark published", func(tx pgx.Tx) error {
		if err := lockLease(ctx, tx, name, owner); err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM event_log`).Scan(&last); err != nil {
			return err
		}
		if position < 0 || position > last {
			return fmt.Errorf("%w: position %d is outside the event log (1 to %d)", errInvalid, position, last)
		}
		_, err := tx.Exec(ctx, `INSERT INTO event_cursors (name, position) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET position = greatest(event_cursors.position, excluded.position)`, name, position)
		return err
	})
}
