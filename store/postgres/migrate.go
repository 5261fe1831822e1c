package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ibmail/ibmail/store"
)

// migrationFiles holds the schema as an ordered list of changes, so that an
// existing database is brought forward the same way a new one is built.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockClass is the first key of the advisory lock that serialises
// migrations ("ibml" in ASCII); the second is the schema's name, so that
// replicas sharing a schema wait for each other and tests, each in a schema
// of its own, do not.
const migrationLockClass = 0x69626d6c

// migrate applies the migrations not yet recorded in schema_migrations, each
// in its own transaction, under a session advisory lock. Replicas starting
// together queue on the lock, and each finds the versions applied by those
// before it. Even CREATE TABLE IF NOT EXISTS needs the lock: two run at once
// can both find no table and one then fails on the catalog's unique index.
//
// The lock is held on a connection of its own, closed at the end: closing
// releases the lock even if unlocking failed, and a replica that dies while
// migrating releases it with its connection.
func migrate(ctx context.Context, cfg *pgx.ConnConfig, ms []store.Migration) error {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())

	// current_schema() is NULL when no schema of the search_path exists;
	// the lock function would then silently take no lock at all.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext(coalesce(current_schema(), '')))`,
		int32(migrationLockClass)); err != nil {
		return fmt.Errorf("lock for migrations: %w", err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema versions: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("read schema versions: %w", err)
	}
	done := make(map[int]bool, len(applied))
	newest := 0
	for _, v := range applied {
		done[int(v)] = true
		newest = max(newest, int(v))
	}
	// A database written by a newer binary may have tables this one would
	// misuse; refusing is safer than guessing.
	if len(ms) > 0 && newest > ms[len(ms)-1].Version {
		return fmt.Errorf("database schema version %d is newer than this program's %d", newest, ms[len(ms)-1].Version)
	}
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: pgx sends it as a simple query, which may
			// hold several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext(coalesce(current_schema(), '')))`,
		int32(migrationLockClass)); err != nil {
		return fmt.Errorf("unlock after migrations: %w", err)
	}
	return nil
}
