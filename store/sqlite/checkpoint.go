package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// walAutoCheckpoint is the WAL length, in pages, past which the writer
// checkpoints on its own commit path. The checkpointer normally keeps up,
// so this is a backstop: a WAL only restarts from its beginning after a
// checkpoint that nothing wrote during, which the writer's own provides.
const walAutoCheckpoint = 10000

// checkpointPause is the least time between two background checkpoints.
// Each checkpoint writes every page the WAL holds since the last one, once,
// and syncs the database file: run after every commit, it wrote a page
// the writer changes in every transaction (the tables' last pages, the
// activity index's) as often as the writer did, and synced as often too.
// A pause lets many commits share one; the WAL grows by what the writer
// commits meanwhile, a few MiB under full load.
const checkpointPause = 100 * time.Millisecond

// checkpointer copies committed pages from the WAL back into the database
// file on its own connection. Left to SQLite, the commit that crosses the
// auto-checkpoint threshold does this, holding up the writer and every
// caller queued behind it; here it overlaps with the next transactions.
type checkpointer struct {
	db     *sql.DB
	kick   chan struct{} // capacity 1: "there are new frames"
	stop   chan struct{}
	exited chan struct{}
}

func newCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{
		db:     db,
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go c.run()
	return c
}

// committed tells the checkpointer that the WAL has grown. It never blocks:
// one pending kick covers any number of commits.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.exited)
	pause := time.NewTimer(checkpointPause)
	defer pause.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		// PASSIVE never waits for readers or the writer: it copies what it
		// can and the next kick picks up the rest.
		var busy, logFrames, copied int
		err := c.db.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied)
		if err != nil {
			slog.Warn("sqlite: background checkpoint failed", "err", err)
		}
		pause.Reset(checkpointPause)
		select {
		case <-c.stop:
			return
		case <-pause.C:
		}
	}
}

// close stops the checkpointer; SQLite checkpoints the rest when the last
// connection closes.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.exited
	return c.db.Close()
}
