package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/ibmail/ibmail/store"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

// errInvalid marks a request refused for its content (an outcome that is
// not a final state, a recipient of another batch): a bug in the caller,
// which retrying would not fix, so not ErrUnavailable.
var errInvalid = store.ErrInvalidArgument

// isCallerError reports the store's own answers, which wrapErr must pass
// on unchanged for errors.Is to find them.
func isCallerError(err error) bool {
	for _, target := range []error{store.ErrNotFound, store.ErrAlreadyExists, store.ErrInUse, store.ErrLeaseLost, store.ErrKeyMismatch, store.ErrChanged, store.ErrIdempotencyKeyReused, errInvalid} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// isUniqueViolation reports a primary key or unique index refusing a row.
func isUniqueViolation(err error) bool {
	var se *sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3lib.SQLITE_CONSTRAINT_UNIQUE:
		return true
	}
	return false
}

// writeTx runs fn in one transaction on the write connection, beside the
// group-commit writer rather than through it. These writes are few next to
// ingest, some are big (a send of 100,000 recipients), and they fail on
// their own terms (ErrAlreadyExists, ErrLeaseLost), which inside a shared
// transaction would fail the webhook bodies committed with them. The single
// write connection still serialises them with the writer's transactions,
// and _txlock=immediate takes the write lock at BEGIN, so whatever fn reads
// (an idempotency key, a lease) cannot change before it commits.
func (s *Store) writeTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if !s.w.enter() {
		return errClosed
	}
	defer s.w.leave()
	tx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return readErr(ctx, op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return readErr(ctx, op, err)
	}
	// The driver rolls back a COMMIT that failed, leaving the connection
	// clean for the writer.
	if err := tx.Commit(); err != nil {
		return readErr(ctx, op, err)
	}
	s.ckpt.committed()
	return nil
}

// readTx runs fn in one read transaction, so that what it reads in several
// queries (a send and its counts) is one snapshot.
func (s *Store) readTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return readErr(ctx, op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return readErr(ctx, op, err)
	}
	return nil
}

// nullMicros stores the zero time as NULL, for times that mean "not yet".
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

// inChunk bounds the values bound to one IN list. SQLite allows 32766
// parameters, but a statement that long costs more to prepare than it
// saves, and a few hundred keeps the lookups of a 100,000-address check in
// the low hundreds of statements.
const inChunk = 500

// chunks calls fn with consecutive slices of at most inChunk values.
func chunks[T any](values []T, fn func([]T) error) error {
	for len(values) > 0 {
		n := min(len(values), inChunk)
		if err := fn(values[:n]); err != nil {
			return err
		}
		values = values[n:]
	}
	return nil
}
