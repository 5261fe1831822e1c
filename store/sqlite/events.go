package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ibmail/ibmail/store"
)

// This engine has one writer, so ids are given, and committed, in order:
// the outbox read in id order is commit order, and the sequencer's write
// transaction, serialised with ingest on the write connection, sees every
// entry committed before it.

// AcquireLease takes, renews or takes over the lease name; see
// store.EventLogStore. The upsert's WHERE leaves a live lease of another
// owner alone, and then no row changes.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	var held bool
	err := s.writeTx(ctx, "acquire lease", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO event_leases (name, owner, expiry) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expiry = excluded.expiry
			WHERE event_leases.owner = excluded.owner OR event_leases.expiry < ?`,
			name, owner, micros(now.Add(ttl)), micros(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		held = n == 1
		return err
	})
	return held, err
}

// ReleaseLease gives up the lease name if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	return s.writeTx(ctx, "release lease", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM event_leases WHERE name = ? AND owner = ?`, name, owner)
		return err
	})
}

// checkLease answers ErrLeaseLost unless owner holds the lease name.
func checkLease(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name, owner string) error {
	var holder string
	err := q.QueryRowContext(ctx, `SELECT owner FROM event_leases WHERE name = ?`, name).Scan(&holder)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && holder != owner) {
		return fmt.Errorf("lease %s: %w", name, store.ErrLeaseLost)
	}
	return err
}

// SequenceEvents moves the oldest outbox entries to the log. It reads
// first, on the reader pool, so that the usual call, finding the outbox
// empty, does not take the write lock from ingest.
func (s *Store) SequenceEvents(ctx context.Context, owner string, limit int) (int, error) {
	if s.w.isClosed() {
		return 0, errClosed
	}
	if err := checkLease(ctx, s.readDB, store.SequencerLease, owner); err != nil {
		return 0, readErr(ctx, "sequence events", err)
	}
	var pending bool
	if err := s.readDB.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM event_outbox)`).Scan(&pending); err != nil {
		return 0, readErr(ctx, "sequence events", err)
	}
	if !pending || limit <= 0 {
		return 0, nil
	}
	var moved int
	err := s.writeTx(ctx, "sequence events", func(tx *sql.Tx) error {
		if err := checkLease(ctx, tx, store.SequencerLease, owner); err != nil {
			return err
		}
		var last, lastID sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(position) FROM event_log`).Scan(&last); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT MAX(event_id) FROM (SELECT event_id FROM event_outbox ORDER BY event_id LIMIT ?)`,
			limit).Scan(&lastID); err != nil || !lastID.Valid {
			return err
		}
		// An outbox entry is an event's id, or a retraction's (see
		// migration 0012), which logs the event it retracts.
		res, err := tx.ExecContext(ctx, `INSERT INTO event_log (position, event_id, name, retraction)
			SELECT ? + ROW_NUMBER() OVER (ORDER BY o.event_id), e.id, e.name, r.id IS NOT NULL
			FROM event_outbox o LEFT JOIN event_retractions r ON r.id = o.event_id
			JOIN profile_events e ON e.id = coalesce(r.event_id, o.event_id)
			WHERE o.event_id <= ? ORDER BY o.event_id`, last.Int64, lastID.Int64)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		moved = int(n)
		_, err = tx.ExecContext(ctx, `DELETE FROM event_outbox WHERE event_id <= ?`, lastID.Int64)
		return err
	})
	if err != nil {
		return 0, err
	}
	return moved, nil
}

// ReadEventLog returns events of the log after q.After, in order of
// position. With names it reads event_log_name, one range per name.
func (s *Store) ReadEventLog(ctx context.Context, q store.EventLogQuery) ([]store.LoggedEvent, error) {
	var sb strings.Builder
	args := []any{q.After}
	sb.WriteString(`SELECT l.position, l.retraction, e.id, e.name, e.time, e.profile_id, e.email, e.params, ` + eventExtrasSQL + `
		FROM event_log l JOIN profile_events e ON e.id = l.event_id` + eventJoinsSQL + ` WHERE l.position > ?`)
	if names := uniqueNames(q.Names); len(names) > 0 {
		sb.WriteString(` AND l.name IN (` + placeholders(len(names)) + `)`)
		for _, n := range names {
			args = append(args, n)
		}
	}
	sb.WriteString(` ORDER BY l.position LIMIT ?`)
	args = append(args, limitOf(q.Limit))

	rows, err := s.readDB.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, readErr(ctx, "read event log", err)
	}
	defer rows.Close()
	var out []store.LoggedEvent
	for rows.Next() {
		var (
			e      store.LoggedEvent
			t      int64
			params sql.NullString
			extras eventExtras
		)
		if err := rows.Scan(append([]any{&e.Position, &e.Retraction, &e.ID, &e.Name, &t, &e.ProfileID, &e.Email, &params},
			extras.dest()...)...); err != nil {
			return nil, readErr(ctx, "read event log", err)
		}
		extras.apply(&e.Event)
		e.ReportID = e.ID
		e.Time = fromMicros(t)
		if params.Valid {
			if err := json.Unmarshal([]byte(params.String), &e.Params); err != nil {
				e.Params, e.Unreadable = nil, "params do not decode: "+err.Error()
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "read event log", err)
	}
	return out, nil
}

// LastEventPosition is the last position of the log, 0 when it is empty.
func (s *Store) LastEventPosition(ctx context.Context) (int64, error) {
	var last sql.NullInt64
	if err := s.readDB.QueryRowContext(ctx, `SELECT MAX(position) FROM event_log`).Scan(&last); err != nil {
		return 0, readErr(ctx, "last event position", err)
	}
	return last.Int64, nil
}

// PublishedPosition is how far the publisher name has got.
func (s *Store) PublishedPosition(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := s.readDB.QueryRowContext(ctx, `SELECT position FROM event_cursors WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, readErr(ctx, "published position", err)
	}
	return pos, nil
}

// MarkPublished moves the publisher name's cursor forward to position.
func (s *Store) MarkPublished(ctx context.Context, name, owner string, position int64) error {
	return s.writeTx(ctx, "mark published", func(tx *sql.Tx) error {
		if err := checkLease(ctx, tx, name, owner); err != nil {
			return err
		}
		var last sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(position) FROM event_log`).Scan(&last); err != nil {
			return err
		}
		if position < 0 || position > last.Int64 {
			return fmt.Errorf("%w: position %d is outside the event log (1 to %d)", errInvalid, position, last.Int64)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO event_cursors (name, position) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET position = MAX(position, excluded.position)`, name, position)
		return err
	})
}
