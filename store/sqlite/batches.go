package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ibmail/ibmail/store"
)

// claimSQL finds the batches due at a time: pending or ambiguous ones whose
// next attempt has come, and in-flight ones whose dispatcher let the lease
// expire. Each half reads its own partial index, whose entries end in the
// primary key, so both come sorted by (due, send_id, seq) and SQLite merges
// them instead of sorting: the oldest due go first, a send's batches in
// order.
const claimSQL = `
	SELECT send_id, seq, bulk_id, state, attempts, next_attempt_time, last_error, next_attempt_time AS due
	FROM send_batches WHERE state IN (1, 3) AND next_attempt_time <= ?
	UNION ALL
	SELECT send_id, seq, bulk_id, state, attempts, next_attempt_time, last_error, lease_expiry AS due
	FROM send_batches WHERE state = 2 AND lease_expiry < ?
	ORDER BY 8, 1, 2 LIMIT ?`

// batchPendingSQL reads a batch's pending recipients; see the INDEXED BY
// in sends.go for why the index is named.
const batchPendingSQL = `SELECT ` + recipientColumns + ` FROM send_recipients INDEXED BY send_recipients_batch
	WHERE send_id = ? AND batch_seq = ? AND state = 1 ORDER BY seq`

// ClaimBatches leases up to limit due batches to owner. Finding and
// leasing happen in one write transaction, which holds SQLite's write lock
// from its BEGIN, so two claimers can never take the same batch. The sends
// come with their content but without counts, which no dispatcher needs.
func (s *Store) ClaimBatches(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]store.ClaimedBatch, error) {
	if limit <= 0 {
		return nil, nil
	}
	until := micros(now.Add(lease))
	var out []store.ClaimedBatch
	err := s.writeTx(ctx, "claim batches", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, claimSQL, micros(now), micros(now), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				c         store.ClaimedBatch
				state     int64
				next, due int64
			)
			if err := rows.Scan(&c.SendID, &c.Seq, &c.BulkID, &state, &c.Attempts, &next, &c.LastError, &due); err != nil {
				rows.Close()
				return err
			}
			c.NextAttemptTime = fromMicros(next)
			c.MaybeSent = store.BatchState(state) != store.BatchPending
			c.State = store.BatchInFlight
			c.Attempts++
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == 0 {
			return nil
		}

		take, err := tx.PrepareContext(ctx, `UPDATE send_batches
			SET state = 2, lease_owner = ?, lease_expiry = ?, attempts = attempts + 1 WHERE send_id = ? AND seq = ?`)
		if err != nil {
			return err
		}
		defer take.Close()
		pending, err := tx.PrepareContext(ctx, batchPendingSQL)
		if err != nil {
			return err
		}
		defer pending.Close()
		sends := map[string]store.Send{}
		for i := range out {
			c := &out[i]
			if _, err := take.ExecContext(ctx, owner, until, c.SendID, c.Seq); err != nil {
				return fmt.Errorf("lease batch %s/%d: %w", c.SendID, c.Seq, err)
			}
			sn, ok := sends[c.SendID]
			if !ok {
				if sn, err = scanSend(tx.QueryRowContext(ctx, `SELECT `+sendColumns+` FROM sends WHERE id = ?`, c.SendID)); err != nil {
					return fmt.Errorf("send of batch %s/%d: %w", c.SendID, c.Seq, err)
				}
				sends[c.SendID] = sn
			}
			c.Send = sn
			rows, err := pending.QueryContext(ctx, c.SendID, c.Seq)
			if err != nil {
				return err
			}
			if err := scanRecipients(rows, func(r store.Recipient) { c.Recipients = append(c.Recipients, r) }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// leaseHeld is the condition under which owner may act on a batch: it is
// in flight under owner's lease. Whether the lease has expired does not
// matter until another dispatcher claims the batch, which is what takes it
// away; CompleteBatch has no clock to compare with anyway.
const leaseHeld = `send_id = ? AND seq = ? AND state = 2 AND lease_owner = ?`

const (
	batchPendingLeftSQL = `SELECT EXISTS (SELECT 1 FROM send_recipients INDEXED BY send_recipients_batch
		WHERE send_id = ? AND batch_seq = ? AND state = 1)`
	sendPendingLeftSQL = `SELECT EXISTS (SELECT 1 FROM send_recipients INDEXED BY send_recipients_state
		WHERE send_id = ? AND state = 1)`
)

// CompleteBatch gives the batch's recipients their outcomes, marks it done
// and, when that was the send's last pending recipient, the send too, all
// in one transaction that changes nothing unless owner holds the lease.
// Every outcome must be final and about a recipient of this batch, and no
// recipient of the batch may stay pending: a done batch is never claimed
// again, so one would keep its send from ever being done.
func (s *Store) CompleteBatch(ctx context.Context, owner string, sendID string, seq int, outcomes []store.RecipientOutcome) error {
	for _, o := range outcomes {
		if !o.State.Final() {
			return fmt.Errorf("sqlite: complete batch %s/%d: recipient %d: state %d is not final: %w", sendID, seq, o.Seq, o.State, errInvalid)
		}
	}
	return s.writeTx(ctx, "complete batch", func(tx *sql.Tx) error {
		if err := updateLeased(ctx, tx, `UPDATE send_batches SET state = 4, lease_owner = '', lease_expiry = NULL
			WHERE `+leaseHeld, sendID, seq, owner); err != nil {
			return err
		}
		if len(outcomes) > 0 {
			set, err := tx.PrepareContext(ctx, `UPDATE send_recipients SET state = ?, message_id = ?, reason = ?
				WHERE send_id = ? AND seq = ? AND batch_seq = ?`)
			if err != nil {
				return err
			}
			defer set.Close()
			for _, o := range outcomes {
				res, err := set.ExecContext(ctx, int64(o.State), o.MessageID, o.Reason, sendID, o.Seq, seq)
				if err != nil {
					return fmt.Errorf("recipient %d: %w", o.Seq, err)
				}
				if n, err := res.RowsAffected(); err != nil {
					return err
				} else if n == 0 {
					return fmt.Errorf("recipient %d is not in batch %s/%d: %w", o.Seq, sendID, seq, errInvalid)
				}
			}
		}
		var left bool
		if err := tx.QueryRowContext(ctx, batchPendingLeftSQL, sendID, seq).Scan(&left); err != nil {
			return err
		}
		if left {
			return fmt.Errorf("batch %s/%d: recipients without an outcome: %w", sendID, seq, errInvalid)
		}
		if err := tx.QueryRowContext(ctx, sendPendingLeftSQL, sendID).Scan(&left); err != nil {
			return err
		}
		if !left {
			// No clock is given: the send is done when this commits.
			if _, err := tx.ExecContext(ctx, `UPDATE sends SET done_time = ? WHERE id = ? AND done_time IS NULL`,
				micros(time.Now()), sendID); err != nil {
				return err
			}
		}
		return nil
	})
}

// RescheduleBatch puts a batch owner holds back as pending or ambiguous,
// due at next, and ends the lease.
func (s *Store) RescheduleBatch(ctx context.Context, owner string, sendID string, seq int, state store.BatchState, next time.Time, lastError string) error {
	if state != store.BatchPending && state != store.BatchAmbiguous {
		return fmt.Errorf("sqlite: reschedule batch %s/%d: state %d: %w", sendID, seq, state, errInvalid)
	}
	return s.writeTx(ctx, "reschedule batch", func(tx *sql.Tx) error {
		return updateLeased(ctx, tx, `UPDATE send_batches SET state = ?, next_attempt_time = ?, last_error = ?,
			lease_owner = '', lease_expiry = NULL WHERE `+leaseHeld,
			int64(state), micros(next), lastError, sendID, seq, owner)
	})
}

// ReleaseLeases hands owner's in-flight batches back as ambiguous.
func (s *Store) ReleaseLeases(ctx context.Context, owner string, now time.Time) (int, error) {
	var n int64
	err := s.writeTx(ctx, "release leases", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE send_batches SET state = ?, next_attempt_time = ?,
			lease_owner = '', lease_expiry = NULL WHERE state = ? AND lease_owner = ?`,
			int64(store.BatchAmbiguous), micros(now), int64(store.BatchInFlight), owner)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// ExtendLease moves the end of owner's lease on a batch to until.
func (s *Store) ExtendLease(ctx context.Context, owner string, sendID string, seq int, until time.Time) error {
	return s.writeTx(ctx, "extend lease", func(tx *sql.Tx) error {
		return updateLeased(ctx, tx, `UPDATE send_batches SET lease_expiry = ? WHERE `+leaseHeld,
			micros(until), sendID, seq, owner)
	})
}

// updateLeased runs an UPDATE of send_batches conditioned on leaseHeld
// (its last three parameters) and answers ErrLeaseLost when it matched
// nothing; the transaction's rollback then undoes whatever came before.
func updateLeased(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("batch %v/%v of %q: %w", args[len(args)-3], args[len(args)-2], args[len(args)-1], store.ErrLeaseLost)
	}
	return nil
}
