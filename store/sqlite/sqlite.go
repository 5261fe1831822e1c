// Package sqlite is ibmail's embedded storage engine: one SQLite file, in
// pure Go (modernc.org/sqlite), so the service ships as a single static
// binary.
//
// Ingest goes through one writer goroutine that commits the work of all
// concurrent callers in a single transaction (group commit), so that each
// webhook body is durable before it is acknowledged without paying one fsync
// per body. The sending side's writes (sends, batch leases, connections),
// fewer, sometimes big and failing on their own terms, run their own
// transactions on the same connection instead (see writeTx). Reads use a
// separate pool of connections and, thanks to WAL mode, never wait behind
// a write.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ibmail/ibmail/store"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

// Store is a store.Store kept in one SQLite database file.
type Store struct {
	writeDB *sql.DB // one connection, used only by the writer goroutine
	readDB  *sql.DB // query_only connections for listings and searches
	reads   *preparedReads
	w       *writer
	ckpt    *checkpointer

	// mayHoldRecipients is false while the file holds no send recipient:
	// a webhook's attribution lookups then answer without a query, for
	// a server that only ingests reports of mail sent by others. It turns
	// true, for good, when the file is opened with recipients in it, or
	// before CreateSend writes any: a lookup that still saw false ran
	// before those recipients were committed, and would have found
	// nothing either. Only this process writes the file (see busyTimeout).
	mayHoldRecipients atomic.Bool

	// windowProbeCap is the constant of that name; tests set 0 to force
	// the profile-first plan of SearchProfiles.
	windowProbeCap int

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

const (
	// readConns bounds concurrent readers: more than the cores lets a slow
	// segmentation not hold up the activity list, without thrashing.
	readConns = 4
	// busyTimeout only matters when another process holds the file (a
	// backup, the sqlite3 shell); inside this process writes are serialised.
	busyTimeout = 10 * time.Second
)

// Open opens, creating it if needed, the database file at path and brings
// its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}

	// synchronous=FULL syncs the WAL at every commit: NORMAL would lose the
	// last commits on power loss, and a webhook answered 200 must not.
	writeDB, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_txlock": {"immediate"},
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"synchronous(FULL)",
			"foreign_keys(1)",
			// The activity index takes inserts all over its range
			// (by profile id); keep its pages in memory.
			"cache_size(-65536)",
			// Bound the WAL left on disk after a checkpoint.
			"journal_size_limit(67108864)",
			fmt.Sprintf("wal_autocheckpoint(%d)", walAutoCheckpoint),
			"temp_store(MEMORY)",
		},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w: %v", abs, store.ErrUnavailable, err)
	}
	writeDB.SetMaxOpenConns(1)
	writeDB.SetMaxIdleConns(1)
	writeDB.SetConnMaxLifetime(0)
	writeDB.SetConnMaxIdleTime(0)

	// 8 KiB pages hold a stored report (about 900 bytes with its payload)
	// with less left over than 4 KiB ones, and halve the WAL frames, so
	// the writes per report. The page size only takes on a new file, and
	// must be set before WAL mode, which writes the first page: the
	// driver runs its DSN pragmas in name order, so both are set here. An
	// existing file keeps its page size, and WAL mode, which is
	// persistent.
	if _, err := writeDB.ExecContext(ctx, `PRAGMA page_size = 8192`); err != nil {
		writeDB.Close()
		return nil, wrapErr("open "+abs, err)
	}
	if _, err := writeDB.ExecContext(ctx, `PRAGMA journal_mode = WAL`); err != nil {
		writeDB.Close()
		return nil, wrapErr("open "+abs, err)
	}
	if err := migrate(ctx, writeDB, ms); err != nil {
		writeDB.Close()
		return nil, wrapErr("open "+abs, err)
	}

	readDB, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"query_only(1)",
			"cache_size(-16384)",
			"temp_store(MEMORY)",
		},
	}))
	if err != nil {
		writeDB.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w: %v", abs, store.ErrUnavailable, err)
	}
	readDB.SetMaxOpenConns(readConns)
	readDB.SetMaxIdleConns(readConns)
	readDB.SetConnMaxIdleTime(0)
	if err := readDB.PingContext(ctx); err != nil {
		readDB.Close()
		writeDB.Close()
		return nil, wrapErr("open "+abs, err)
	}

	// The checkpointer's connection must sync like the writer's: a
	// checkpoint that skipped its fsync could let SQLite reuse WAL space
	// whose pages never reached the database file.
	ckptDB, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"synchronous(FULL)",
		},
	}))
	if err != nil {
		readDB.Close()
		writeDB.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w: %v", abs, store.ErrUnavailable, err)
	}
	ckptDB.SetMaxOpenConns(1)
	ckptDB.SetConnMaxIdleTime(0)
	ckpt := newCheckpointer(ckptDB)

	w, err := newWriter(writeDB, ckpt)
	if err != nil {
		ckpt.close()
		readDB.Close()
		writeDB.Close()
		return nil, wrapErr("open "+abs, err)
	}
	s := &Store{writeDB: writeDB, readDB: readDB, reads: newPreparedReads(readDB), w: w, ckpt: ckpt, windowProbeCap: windowProbeCap}
	var held bool
	if err := readDB.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM send_recipients)`).Scan(&held); err != nil {
		s.Close()
		return nil, wrapErr("open "+abs, err)
	}
	s.mayHoldRecipients.Store(held)
	return s, nil
}

// dsn builds a file: URI, so that a path with '?' or '#' in it is escaped
// instead of being cut at the query.
func dsn(abs string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// Ping checks that both the reader pool and the writer answer.
func (s *Store) Ping(ctx context.Context) error {
	if s.w.isClosed() {
		return errClosed
	}
	if err := s.readDB.PingContext(ctx); err != nil {
		return wrapErr("ping", err)
	}
	var one int
	if err := s.readDB.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return wrapErr("ping", err)
	}
	return nil
}

// Close waits for queued writes to commit, then closes the database. It may
// be called more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// The writer connection closes last: as the last connection it
		// checkpoints the whole WAL and removes it.
		werr := s.w.close()
		s.closeErr = errors.Join(werr, s.ckpt.close(), s.reads.close(), s.readDB.Close(), s.writeDB.Close())
	})
	return s.closeErr
}

var errClosed = fmt.Errorf("sqlite: %w: store closed", store.ErrUnavailable)

// wrapErr marks failures of the engine as store.ErrUnavailable, so that the
// server answers 503 and the sender retries. Context errors stay as they are
// because the caller gave up, and constraint or size violations say that the
// data, not the engine, is at fault: retrying them would never succeed. The
// store's own answers (not found, lease lost, ...) pass through likewise.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrUnavailable) ||
		isCallerError(err) {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var se *sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3lib.SQLITE_CONSTRAINT, sqlite3lib.SQLITE_TOOBIG, sqlite3lib.SQLITE_MISMATCH, sqlite3lib.SQLITE_RANGE:
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
	}
	return fmt.Errorf("sqlite: %s: %w: %v", op, store.ErrUnavailable, err)
}

// micros and fromMicros fix the stored form of times: unix microseconds,
// which sort as integers and round-trip exactly through PostgreSQL too.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
