package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/ibmail/ibmail/store"
)

// TakeSendSlot applies store.NextSendSlot to the connection's stored time
// in one write transaction, so that concurrent takers queue on the writer.
func (s *Store) TakeSendSlot(ctx context.Context, connectionID string, perSecond float64, burst int, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := s.writeTx(ctx, "take send slot", func(tx *sql.Tx) error {
		var tat time.Time
		var us int64
		err := tx.QueryRowContext(ctx, `SELECT tat FROM connection_send_rates WHERE connection_id = ?`, connectionID).Scan(&us)
		switch {
		case err == nil:
			tat = fromMicros(us)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var next time.Time
		next, wait = store.NextSendSlot(tat, now, perSecond, burst)
		if wait > 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO connection_send_rates (connection_id, tat) VALUES (?, ?)
			ON CONFLICT (connection_id) DO UPDATE SET tat = excluded.tat`, connectionID, micros(next))
		return err
	})
	return wait, err
}
