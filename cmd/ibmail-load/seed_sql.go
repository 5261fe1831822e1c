package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the driver store/sqlite uses, for the seeding connection

	"github.com/ibmail/ibmail/store"
)

// The distribution of --seed sql, the same in both engines, computed in
// SQL from the seed index i in [0, n) with integer arithmetic that stays
// far below 2^63 (SQLite would turn an overflowing product into a float,
// PostgreSQL would fail): three steps of an LCG (glibc's constants, modulo
// 2^31), each product below 2^31 * 1103515245 < 2^62 (the first below
// 2^56, as i < maxEvents), and a time slot per event.
//
//	h1 = (i*1103515245 + 12345) % 2^31
//	h2 = ((h1 xor h1>>13)*1103515245 + 12345) % 2^31
//	h3 = ((h2 xor h2>>13)*1103515245 + 12345) % 2^31
//	profile = 'prof-%08d' of (h2/256) % profiles
//	name    = seedNames[(h3/65536) % 4]
//	step    = year / n, in µs (at most 3.2e13, so i*step < 2^45)
//	time    = now - (n-i)*step + h3 % step, in [now - year, now)
//
// The xor-shift between the steps matters: a plain chain of LCG steps is
// an affine function of i modulo 2^31, which deals the events out to the
// profiles like cards (20 each, give or take one, at regular intervals of
// id and time) and the names in strict rotation. With it, the counts per
// profile spread as random ones would (a standard deviation of about
// sqrt(20), as with seedReports), and each profile's events fall at
// irregular times. The low bits of an LCG are weak, so the profile and the
// name come from high bits (SQLite has no xor: there it is (a|b) - (a&b)).
//
// Times are uniform over the year before now, as seedReports makes them,
// but increase with i, hence with the id: as in production, where a
// report gets its id when it arrives, soon after its done_at. Then
// every index but profile_events_activity takes its entries in order (the
// report key leads with done_at, profile_events_window with name and time),
// as the schemas intend, and only that one takes random inserts: the
// seeded tables have the shape of ingested ones, and seeding runs at the
// speed of appends. sqlSeedEvent is the same in Go, for the tests to check
// the SQL against; TestSeedSQL also checks that the result is spread as it
// should be.
//
// Each row pair is what IngestReports makes of a classified report that
// produced an event: a delivery_reports row (outcome event, rule 'seed',
// Infobip's key with done_at in Infobip's "2006-01-02T15:04:05.000+0000",
// receive_time = the event time, a small JSON payload) and a profile_events
// row with the report's id as its own, the same profile, email and time,
// and params as the JSON object text with sorted keys that
// store.AppendStringMap writes (a jsonb in PostgreSQL). Ids continue after
// the highest the store holds, so they collide neither with what an earlier
// phase stored nor with what is ingested later, and message ids are
// 'seed-<id>', unique in the store. No event_outbox (nor event_log) rows are
// written: they only feed the sequencer and WatchEvents, which the load tool
// neither runs nor measures, and segmentation does not read them.
const (
	lcgMul = 1103515245
	lcgAdd = 12345
	lcgMod = 1 << 31
)

// seedStep is the time slot of one of n events, in microseconds.
func seedStep(n int) int64 { return year.Microseconds() / int64(n) }

// sqlSeedEvent is the profile, name and time the SQL gives seed index i of
// n.
func sqlSeedEvent(i int64, n, profiles int, now time.Time) (profile, name string, at time.Time) {
	h1 := (i*lcgMul + lcgAdd) % lcgMod
	h2 := ((h1^h1>>13)*lcgMul + lcgAdd) % lcgMod
	h3 := ((h2^h2>>13)*lcgMul + lcgAdd) % lcgMod
	step := seedStep(n)
	profile = fmt.Sprintf("prof-%08d", h2/256%int64(profiles))
	name = seedNames[h3/65536%4]
	at = now.Add(time.Duration(-(int64(n)-i)*step+h3%step) * time.Microsecond)
	return profile, name, at
}

// The parts of the rows that do not depend on the engine's dialect.
const (
	// seedPayloadHead + message id + seedPayloadTo + email +
	// seedPayloadDone + done_at + seedPayloadTail is the payload, the shape
	// seedReports gives its reports.
	seedPayloadHead = `{"bulkId":"bulk-seed","messageId":"`
	seedPayloadTo   = `","to":"`
	seedPayloadDone = `","doneAt":"`
	seedPayloadTail = `","status":{"id":4,"groupId":2,"name":"UNDELIVERABLE_REJECTED_OPERATOR"},"error":{"id":6012,"name":"EC_HARD_BOUNCE","permanent":true}}`
	// seedParamsHead + message id + seedParamsTail is the params object,
	// keys sorted as store.AppendStringMap sorts them.
	seedParamsHead = `{"bulkId":"bulk-seed","errorId":"6012","errorName":"EC_HARD_BOUNCE","messageId":"`
	seedParamsTail = `","permanent":"true","rule":"seed"}`
)

// seedViaSQL seeds n events with INSERT ... SELECT in chunks of
// cfg.sqlChunk (sqlSeedChunk when 0), each chunk one transaction of two
// statements: the reports, generated, then their events, read back from the
// reports just written, so that the two cannot disagree.
func seedViaSQL(ctx context.Context, cfg config, h *harness, n, profiles int, now time.Time, logf func(string, ...any)) (int, string, error) {
	chunk := cfg.sqlChunk
	if chunk <= 0 {
		chunk = sqlSeedChunk
	}
	var (
		seeded int
		err    error
	)
	if h.sqlitePath != "" {
		seeded, err = seedSQLite(ctx, h.sqlitePath, n, profiles, chunk, now, logf)
	} else {
		seeded, err = seedPostgres(ctx, cfg.db, n, profiles, chunk, now, logf)
	}
	if err != nil {
		return seeded, "", err
	}
	return seeded, fmt.Sprintf("via INSERT ... SELECT (--seed sql, %d a chunk)", chunk), nil
}

// sqliteSeedReportsSQL inserts the reports of seed indexes [:lo, :hi) with
// ids :base + i; :first is now - n*step. SQLite has no generate_series
// (modernc's build leaves the extension out), hence the recursive CTE; its
// rows stream, they are not materialised. Times are unix microseconds, as
// the engine stores them.
const sqliteSeedReportsSQL = `
WITH RECURSIVE s(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM s WHERE i + 1 < :hi),
a AS (SELECT i, (i * 1103515245 + 12345) % 2147483648 AS h1 FROM s),
b AS (SELECT i, (((h1 | (h1 >> 13)) - (h1 & (h1 >> 13))) * 1103515245 + 12345) % 2147483648 AS h2 FROM a),
c AS (SELECT i, h2, (((h2 | (h2 >> 13)) - (h2 & (h2 >> 13))) * 1103515245 + 12345) % 2147483648 AS h3 FROM b),
d AS (
	SELECT :base + i AS id,
		printf('prof-%08d', (h2 / 256) % :profiles) AS profile_id,
		CASE (h3 / 65536) % 4 WHEN 0 THEN :name0 WHEN 1 THEN :name1 WHEN 2 THEN :name2 ELSE :name3 END AS name,
		:first + i * :step + h3 % :step AS t
	FROM c),
e AS (
	SELECT id, 'seed-' || id AS message_id, profile_id, profile_id || '@example.com' AS email, name, t,
		strftime('%Y-%m-%dT%H:%M:%S', t / 1000000, 'unixepoch') || printf('.%03d+0000', t / 1000 % 1000) AS done_at
	FROM d)
INSERT INTO delivery_reports (id, message_id, status_id, error_id, done_at, connection_id, profile_id, email,
	outcome, event_name, rule, receive_time, payload)
SELECT id, message_id, 4, 6012, done_at, 'conn-load', profile_id, email, :outcome, name, 'seed', t,
	CAST(:ph || message_id || :pto || email || :pdone || done_at || :ptail AS BLOB)
FROM e`

// sqliteSeedEventsSQL makes the events of the reports with ids [:lo, :hi).
const sqliteSeedEventsSQL = `
INSERT INTO profile_events (id, name, time, profile_id, email, params)
SELECT id, event_name, receive_time, profile_id, email, :qh || message_id || :qt
FROM delivery_reports WHERE id >= :lo AND id < :hi`

// seedSQLite seeds over a connection of its own to the store's file, while
// the store keeps it open: the server is running on it. SQLite has one
// writer at a time, so the store's writer must be idle meanwhile, which it
// is (nothing else writes during the segment phase), and the busy timeout
// covers a commit or checkpoint of the store's that is still finishing.
//
// The connection gets a 2 GB page cache, so that profile_events_activity,
// the one index with random inserts (about 1 GB at 10 million events), and
// a chunk's dirty pages stay in memory; a chunk of 1,000,000 rows dirties
// about 1.5 GB. (Bigger chunks, spilling, measured slower.) Its price is
// some seconds of freeing pages when the connection closes. And
// synchronous=NORMAL: a temporary load store need not survive a power cut,
// and in WAL mode NORMAL still keeps it consistent.
//
// No ANALYZE: the SQLite store never runs it (nor PRAGMA optimize) and pins
// its segmentation plans with INDEXED BY precisely because it has no
// statistics; a store filled by ingest has none, so one seeded here must
// not either, or the figures would be those of a database no server has.
func seedSQLite(ctx context.Context, path string, n, profiles, chunk int, now time.Time, logf func(string, ...any)) (int, error) {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: url.Values{
		"_txlock": {"immediate"},
		"_pragma": {
			"busy_timeout(10000)",
			"synchronous(NORMAL)",
			"foreign_keys(1)",
			"cache_size(-2000000)",
			"temp_store(MEMORY)",
			"journal_size_limit(67108864)",
		},
	}.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)

	var base int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM delivery_reports`).Scan(&base); err != nil {
		return 0, fmt.Errorf("highest report id: %w", err)
	}
	args := []any{
		sql.Named("base", base), sql.Named("profiles", int64(profiles)),
		sql.Named("first", now.UnixMicro()-int64(n)*seedStep(n)), sql.Named("step", seedStep(n)),
		sql.Named("outcome", int64(store.OutcomeEvent)),
		sql.Named("name0", seedNames[0]), sql.Named("name1", seedNames[1]), sql.Named("name2", seedNames[2]), sql.Named("name3", seedNames[3]),
		sql.Named("ph", seedPayloadHead), sql.Named("pto", seedPayloadTo), sql.Named("pdone", seedPayloadDone), sql.Named("ptail", seedPayloadTail),
	}
	start := time.Now()
	seeded, err := inChunks(n, chunk, start, logf, func(lo, hi int, t *chunkTimes) error {
		return sqliteTx(ctx, db, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, sqliteSeedReportsSQL,
				append([]any{sql.Named("lo", int64(lo)), sql.Named("hi", int64(hi))}, args...)...)
			if err := insertedAll("reports", res, err, hi-lo); err != nil {
				return err
			}
			t.reportsDone()
			res, err = tx.ExecContext(ctx, sqliteSeedEventsSQL,
				sql.Named("lo", base+int64(lo)), sql.Named("hi", base+int64(hi)),
				sql.Named("qh", seedParamsHead), sql.Named("qt", seedParamsTail))
			if err := insertedAll("events", res, err, hi-lo); err != nil {
				return err
			}
			t.eventsDone()
			return nil
		})
	})
	if err != nil {
		return seeded, err
	}
	// Copy the WAL into the database file and truncate it, as the store's
	// checkpointer would have along the way: readers then do not search a
	// WAL of gigabytes. Busy (a reader in the way) only leaves more WAL.
	var busy, logFrames, copied int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &copied); err != nil {
		return seeded, fmt.Errorf("checkpoint: %w", err)
	}
	logf("segment: checkpointed the WAL (busy %d, %d frames, %d copied) in %s", busy, logFrames, copied, time.Since(start).Round(time.Second))
	return seeded, nil
}

// sqliteTx runs fn in a transaction (BEGIN IMMEDIATE, from the DSN).
func sqliteTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// postgresSeedReportsSQL inserts the reports of seed indexes [$1, $2) with
// ids $3 + i; $5 is now - n*step, $12 step. Ids are given (OVERRIDING
// SYSTEM VALUE) from a range that seedPostgres has first taken from
// delivery_reports_id_seq. done_at is formatted from the UTC time; to_char's
// MS truncates, as Go's .000 does.
const postgresSeedReportsSQL = `
INSERT INTO delivery_reports (id, message_id, status_id, error_id, done_at, connection_id, profile_id, email,
	outcome, event_name, rule, receive_time, payload)
OVERRIDING SYSTEM VALUE
SELECT id, message_id, 4, 6012, done_at, 'conn-load', profile_id, email, $6, name, 'seed', t,
	convert_to($8 || message_id || $9 || email || $10 || done_at || $11, 'UTF8')
FROM (
	SELECT id, 'seed-' || id AS message_id, profile_id, profile_id || '@example.com' AS email, name, t,
		to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS') || '+0000' AS done_at
	FROM (
		SELECT $3::bigint + i AS id,
			'prof-' || lpad(((h2 / 256) % $4::bigint)::text, 8, '0') AS profile_id,
			($7::text[])[(h3 / 65536) % 4 + 1] AS name,
			$5::timestamptz + (i * $12::bigint + h3 % $12::bigint) * interval '1 microsecond' AS t
		FROM (
			SELECT i, h2, ((h2 # (h2 >> 13)) * 1103515245 + 12345) % 2147483648 AS h3
			FROM (
				SELECT i, ((h1 # (h1 >> 13)) * 1103515245 + 12345) % 2147483648 AS h2
				FROM (
					SELECT i, (i * 1103515245 + 12345) % 2147483648 AS h1
					FROM generate_series($1::bigint, $2::bigint - 1) AS g(i)
				) a
			) b
		) c
	) d
) e`

// postgresSeedEventsSQL makes the events of the reports with ids [$1, $2).
const postgresSeedEventsSQL = `
INSERT INTO profile_events (id, name, time, profile_id, email, params)
SELECT id, event_name, receive_time, profile_id, email, ($3 || message_id || $4)::jsonb
FROM delivery_reports WHERE id >= $1 AND id < $2`

// seedPostgres seeds over a connection of its own. Ids: it first moves
// delivery_reports_id_seq past the highest id in use (the table's or the
// sequence's) plus n, so the range it writes can never be drawn by an
// ingest, earlier or later. Then VACUUM (ANALYZE): the PostgreSQL store
// leaves SearchProfiles' plan to the planner, which needs statistics, and
// its index-only scans need the visibility map, which a production table
// gets from autovacuum (this one may have autovacuum off, and would run it
// in the middle of the measurement otherwise).
func seedPostgres(ctx context.Context, dsn string, n, profiles, chunk int, now time.Time, logf func(string, ...any)) (int, error) {
	// Through pgxpool's parser, which strips the pool_* settings a --db
	// URL may carry for the store.
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return 0, err
	}
	conn, err := pgx.ConnectConfig(ctx, pcfg.ConnConfig)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	// A load database need not survive a crash between commits.
	if _, err := conn.Exec(ctx, `SET synchronous_commit = off`); err != nil {
		return 0, err
	}

	var last int64
	if err := conn.QueryRow(ctx, `SELECT setval('delivery_reports_id_seq',
		GREATEST((SELECT COALESCE(max(id), 0) FROM delivery_reports),
			COALESCE(pg_sequence_last_value('delivery_reports_id_seq'), 0)) + $1::bigint)`, int64(n)).Scan(&last); err != nil {
		return 0, fmt.Errorf("reserve ids: %w", err)
	}
	base := last - int64(n) + 1

	start := time.Now()
	seeded, err := inChunks(n, chunk, start, logf, func(lo, hi int, t *chunkTimes) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, postgresSeedReportsSQL, int64(lo), int64(hi), base, int64(profiles),
				now.Add(-time.Duration(int64(n)*seedStep(n))*time.Microsecond), int16(store.OutcomeEvent), seedNames,
				seedPayloadHead, seedPayloadTo, seedPayloadDone, seedPayloadTail, seedStep(n))
			if err := insertedAll("reports", tag, err, hi-lo); err != nil {
				return err
			}
			t.reportsDone()
			tag, err = tx.Exec(ctx, postgresSeedEventsSQL, base+int64(lo), base+int64(hi), seedParamsHead, seedParamsTail)
			if err := insertedAll("events", tag, err, hi-lo); err != nil {
				return err
			}
			t.eventsDone()
			return nil
		})
	})
	if err != nil {
		return seeded, err
	}
	t0 := time.Now()
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) delivery_reports, profile_events`); err != nil {
		return seeded, fmt.Errorf("vacuum: %w", err)
	}
	logf("segment: VACUUM (ANALYZE) took %s", time.Since(t0).Round(time.Second))
	return seeded, nil
}

// chunkTimes times the two statements of a chunk and its commit.
type chunkTimes struct {
	start, reports, events time.Time
}

func (t *chunkTimes) reportsDone() { t.reports = time.Now() }
func (t *chunkTimes) eventsDone()  { t.events = time.Now() }

// inChunks runs insert for each chunk [lo, hi) of the n seed indexes in
// order, logging the progress and where each chunk's time went, and says
// how many were seeded.
func inChunks(n, chunk int, start time.Time, logf func(string, ...any), insert func(lo, hi int, t *chunkTimes) error) (int, error) {
	seeded := 0
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		t := chunkTimes{start: time.Now()}
		if err := insert(lo, hi, &t); err != nil {
			return seeded, err
		}
		seeded = hi
		logf("segment: seeded %d of %d events by SQL in %s (this chunk: reports %s, events %s, commit %s)", seeded, n,
			time.Since(start).Round(time.Second), t.reports.Sub(t.start).Round(time.Millisecond),
			t.events.Sub(t.reports).Round(time.Millisecond), time.Since(t.events).Round(time.Millisecond))
	}
	return seeded, nil
}

// insertedAll checks that an INSERT of a chunk wrote all its want rows;
// res is what the engine's driver says of it: a database/sql Result
// (SQLite) or a pgconn.CommandTag (PostgreSQL).
func insertedAll(what string, res any, err error, want int) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var got int64
	switch r := res.(type) {
	case sql.Result:
		if got, err = r.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	case interface{ RowsAffected() int64 }:
		got = r.RowsAffected()
	default:
		return fmt.Errorf("%s: no row count from %T", what, res)
	}
	if got != int64(want) {
		return fmt.Errorf("%s: %d rows inserted, want %d", what, got, want)
	}
	return nil
}
