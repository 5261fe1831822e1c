// Package postgres is ibmail's engine for several replicas sharing one
// PostgreSQL database.
//
// Where the SQLite engine relies on being the only writer, this one relies on
// PostgreSQL's row locks and unique indexes, so that any number of processes
// can write at once:
//   - a report, delivery or tracking, is stored, and its event made, by
//     INSERT ... ON CONFLICT DO NOTHING on the report's key, so that of two
//     replicas given the same report one stores it and the other counts a
//     duplicate; every event id, whatever its source, is drawn from one
//     sequence;
//   - dispatchers claim batches with SELECT ... FOR UPDATE SKIP LOCKED, and
//     every later step of a batch is conditioned on the lease owner;
//   - idempotency keys and suppressions are unique indexes, used as
//     ON CONFLICT arbiters.
//
// Each IngestReports call of one kind of report is one transaction of a few
// round trips whatever the number of reports: the reports, their events and
// outbox entries go by binary COPY (see copyingest.go), and a call meeting
// a report already stored is run again as one statement whose reports
// travel as arrays and are unnested on the server (see ingestSQL).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is a store.Store kept in a PostgreSQL database, which other Stores,
// in this process or others, may share.
type Store struct {
	pool   *pgxpool.Pool
	closed atomic.Bool

	closeOnce sync.Once

	// deliveries and tracking merge concurrent IngestReports calls of
	// each kind, domainEvents IngestDomainEvents calls (see coalesce.go).
	deliveries, tracking ingestQueue[store.Report]
	domainEvents         ingestQueue[store.DomainEvent]

	// copyMin is the smallest call IngestReports takes by COPY
	// (copyMinReports); tests set 1 to take every call by COPY, or a huge
	// value to take none.
	copyMin int
}

var _ store.Store = (*Store)(nil)

// defaultMaxConns is the pool's size unless the dsn sets pool_max_conns.
// pgxpool's own default, four on two cores, suits CPU-bound work, but an
// ingest spends most of its time waiting for its commit's WAL flush, and
// PostgreSQL flushes the commits waiting at that moment together: with 32
// concurrent webhook bodies, 16 connections ingest about half as much again
// as 4 (BenchmarkIngest100). Replicas times this must stay under the
// server's max_connections (100 by default).
const defaultMaxConns = 16

// Open connects to the database named by dsn, a PostgreSQL URL or key=value
// string that pgxpool accepts (pool_max_conns and the like included), and
// brings its schema up to date. The tables go in the first schema of the
// connection's search_path, which a search_path parameter in the dsn sets.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// A malformed dsn is a configuration mistake, not an outage: no
		// retry would fix it.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, cfg.ConnConfig, ms); err != nil {
		return nil, wrapErr(ctx, "migrate", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, wrapErr(ctx, "open", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, wrapErr(ctx, "open", err)
	}
	s := &Store{pool: pool, copyMin: copyMinReports}
	for _, q := range []*ingestQueue[store.Report]{&s.deliveries, &s.tracking} {
		q.write, q.isEvent = s.ingestNow, func(r *store.Report) bool { return r.Outcome == store.OutcomeEvent }
	}
	s.domainEvents.write = s.ingestDomainEventsNow
	s.domainEvents.isEvent = func(ev *store.DomainEvent) bool { return ev.EventName != "" }
	return s, nil
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := s.pool.Ping(ctx); err != nil {
		return wrapErr(ctx, "ping", err)
	}
	return nil
}

// Close waits for the calls under way to give their connections back, then
// closes them. It may be called more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.pool.Close()
	})
	return nil
}

var errClosed = fmt.Errorf("postgres: %w: store closed", store.ErrUnavailable)

// errInvalid marks a request refused for its content (an outcome that is
// not a final state, a recipient of another batch): a bug in the caller,
// which retrying would not fix, so not ErrUnavailable.
var errInvalid = store.ErrInvalidArgument

// isCallerError reports the store's own answers, which wrapErr must pass on
// unchanged for errors.Is to find them.
func isCallerError(err error) bool {
	for _, target := range []error{store.ErrNotFound, store.ErrAlreadyExists, store.ErrInUse, store.ErrLeaseLost, store.ErrKeyMismatch, store.ErrChanged, store.ErrIdempotencyKeyReused, errInvalid, store.ErrUnavailable} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// wrapErr marks failures of the engine as store.ErrUnavailable, so that the
// server answers 503 and the caller retries: a refused or broken connection,
// a closed pool, a server shutting down, a statement timeout. The caller's
// own context ending stays a context error, since the caller gave up, and so
// do errors that say the data is at fault (SQLSTATE classes 22, data
// exception, and 23, integrity violation): retrying would never succeed.
func wrapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("postgres: %s: %w", op, ctxErr)
	}
	if isCallerError(err) {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 {
		switch pe.Code[:2] {
		case "22", "23":
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
	}
	return fmt.Errorf("postgres: %s: %w: %w", op, store.ErrUnavailable, err)
}

// SQLSTATEs the engine checks for.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// retryable reports failures that abort a transaction through no fault of
// its own and leave nothing of it behind: a deadlock between two replicas
// locking the same rows in different orders, or a serialization failure.
func retryable(err error) bool {
	c := pgCode(err)
	return c == codeDeadlockDetected || c == codeSerializationFailure
}

// maxAttempts bounds the runs of one transaction that keeps being aborted as
// retryable: under such contention the caller is better told to come back.
const maxAttempts = 4

// run calls fn until it succeeds, fails for good, or has been aborted as
// retryable maxAttempts times. Between attempts it waits a little, at
// random, so that the transactions that deadlocked do not meet again.
func (s *Store) run(ctx context.Context, op string, fn func() error) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	var err error
	for attempt := 1; ; attempt++ {
		err = fn()
		if err == nil || !retryable(err) || attempt == maxAttempts {
			break
		}
		t := time.NewTimer(time.Duration(attempt) * time.Duration(1+rand.IntN(10)) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("postgres: %s: %w", op, ctx.Err())
		case <-t.C:
		}
	}
	return wrapErr(ctx, op, err)
}

// inTx runs fn in one read-committed transaction, through run: a
// transaction aborted by a deadlock is run again from the start, so fn must
// set its results only from what it reads in that run.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	return s.run(ctx, op, func() error {
		return pgx.BeginFunc(ctx, s.pool, fn)
	})
}

// defaultLimit applies when a query gives no positive Limit.
const defaultLimit = 50

func limitOf(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

// utc returns a time read from the database in UTC: pgx gives timestamptz
// values in the process's local zone.
func utc(t time.Time) time.Time { return t.UTC() }

// nullTime stores the zero time as NULL, for times that mean "not yet".
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
