package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ibmail/ibmail/store"
)

// TakeSendSlot applies store.NextSendSlot to the connection's stored time
// under a row lock, so that replicas taking slots at once queue on it. The
// row is made first because FOR UPDATE cannot lock a row that does not
// exist yet.
func (s *Store) TakeSendSlot(ctx context.Context, connectionID string, perSecond float64, burst int, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := s.inTx(ctx, "take send slot", func(tx pgx.Tx) error {
		// A new row's time lies in the past: a rate never used is idle.
		if _, err := tx.Exec(ctx, `INSERT INTO connection_send_rates (connection_id, tat) VALUES ($1, 'epoch')
			ON CONFLICT (connection_id) DO NOTHING`, connectionID); err != nil {
			return err
		}
		var tat time.Time
		if err := tx.QueryRow(ctx, `SELECT tat FROM connection_send_rates WHERE connection_id = $1 FOR UPDATE`,
			connectionID).Scan(&tat); err != nil {
			return err
		}
		var next time.Time
		next, wait = store.NextSendSlot(tat, now, perSecond, burst)
		if wait > 0 {
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE connection_send_rates SET tat = $2 WHERE connection_id = $1`, connectionID, next)
		return err
	})
	return wait, err
}
