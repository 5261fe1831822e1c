package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ibmail/ibmail/store"
)

// claimSQL finds the batches due at a time (?1): pending or ambiguous ones
// whose next attempt has come, and in-flight ones whose dispatcher let the
// lease expire. Each half reads its own partial index, whose entries end in
// the primary key, so both come sorted by (due, send_id, seq) and SQLite
// merges them instead of sorting: the oldest due go first, a send's batches
// in order.
//
// A batch whose send's domain is held (see store.SendingDomain.Holds) is
// passed over, and so neither leased nor counted: heldSQL looks its send up
// by primary key, then the domain by its own, for each batch read. Held
// batches stay due, so a claim reads past those before the ones it takes;
// they are a blocked domain's, a few hundred at most.
const claimSQL = `
	SELECT send_id, seq, bulk_id, state, attempts, next_attempt_time, last_error, next_attempt_time AS due
	FROM send_batches WHERE state IN (1, 3) AND next_attempt_time <= ?1 AND NOT EXISTS (` + heldSQL + `)
	UNION ALL
	SELECT send_id, seq, bulk_id, state, attempts, next_attempt_time, last_error, lease_expiry AS due
	FROM send_batches WHERE state = 2 AND lease_expiry < ?1 AND NOT EXISTS (` + heldSQL + `)
	ORDER BY 8, 1, 2 LIMIT ?2`

// heldSQL finds the held domain of a batch's send, at ?1: blocked until
// after then (or with no end), or paused. 3 = blocked, 4 = paused.
const heldSQL = `SELECT 1 FROM sends s JOIN sending_domains d ON d.domain = s.from_domain
		WHERE s.id = send_batches.send_id
		AND (d.state = 4 OR (d.state = 3 AND (d.until_time IS NULL OR d.until_time > ?1)))`

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
		rows, err := tx.QueryContext(ctx, claimSQL, micros(now), limit)
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

// completeRecipientSQL gives one recipient its outcome (?1 state, ?2
// message id, ?3 reason) and, when it is accepted and has no last event
// yet, makes ?7 at ?8 its last event: a report that got there first (by
// callbackData, before the message id was stored) stays. SET reads the row
// as it was, so both CASEs see the old last_event. 2 = accepted.
const completeRecipientSQL = `UPDATE send_recipients SET state = ?1, message_id = ?2, reason = ?3,
	last_event = CASE WHEN ?1 = 2 AND last_event = '' THEN ?7 ELSE last_event END,
	last_event_time = CASE WHEN ?1 = 2 AND last_event = '' THEN ?8 ELSE last_event_time END
	WHERE send_id = ?4 AND seq = ?5 AND batch_seq = ?6`

// messageSendSQL makes the MessageSendEvent of every accepted recipient of
// a batch (?4, ?5) in one statement, ids from ?1 on in request order,
// named ?2 at ?3. Every recipient of a batch was pending until this
// CompleteBatch, so its accepted ones are exactly those it accepted. The
// keys are in AppendStringMap's order.
const messageSendSQL = `INSERT INTO profile_events (id, name, time, profile_id, email, params)
	SELECT ?1 + ROW_NUMBER() OVER (ORDER BY r.seq) - 1, ?2, ?3, r.profile_id, r.email,
		json_object('campaignId', s.campaign_id, 'connectionId', s.connection_id, 'messageId', r.message_id,
			'sendId', s.id, 'senderId', s.sender_id, 'title', s.subject)
	FROM send_recipients r INDEXED BY send_recipients_batch JOIN sends s ON s.id = r.send_id
	WHERE r.send_id = ?4 AND r.batch_seq = ?5 AND r.state = 2
	ORDER BY r.seq`

// CompleteBatch gives the batch's recipients their outcomes, marks it done
// and, when that was the send's last pending recipient, the send too, all
// in one transaction that changes nothing unless owner holds the lease.
// Every outcome must be final and about a recipient of this batch, and no
// recipient of the batch may stay pending: a done batch is never claimed
// again, so one would keep its send from ever being done. Each accepted
// recipient gets its MessageSendEvent, at the time CompleteBatch is
// called, with its outbox entry.
func (s *Store) CompleteBatch(ctx context.Context, owner string, sendID string, seq int, outcomes []store.RecipientOutcome) error {
	for _, o := range outcomes {
		if !o.State.Final() {
			return fmt.Errorf("sqlite: complete batch %s/%d: recipient %d: state %d is not final: %w", sendID, seq, o.Seq, o.State, errInvalid)
		}
	}
	// No clock is given: the send is done, and its recipients accepted,
	// when this commits.
	now := micros(time.Now())
	return s.writeTx(ctx, "complete batch", func(tx *sql.Tx) error {
		if err := updateLeased(ctx, tx, `UPDATE send_batches SET state = 4, lease_owner = '', lease_expiry = NULL
			WHERE `+leaseHeld, sendID, seq, owner); err != nil {
			return err
		}
		accepted := false
		if len(outcomes) > 0 {
			set, err := tx.PrepareContext(ctx, completeRecipientSQL)
			if err != nil {
				return err
			}
			defer set.Close()
			for _, o := range outcomes {
				res, err := set.ExecContext(ctx, int64(o.State), o.MessageID, o.Reason, sendID, o.Seq, seq,
					store.MessageSendEvent, now)
				if err != nil {
					return fmt.Errorf("recipient %d: %w", o.Seq, err)
				}
				if n, err := res.RowsAffected(); err != nil {
					return err
				} else if n == 0 {
					return fmt.Errorf("recipient %d is not in batch %s/%d: %w", o.Seq, sendID, seq, errInvalid)
				}
				accepted = accepted || o.State == store.RecipientAccepted
			}
		}
		var left bool
		if err := tx.QueryRowContext(ctx, batchPendingLeftSQL, sendID, seq).Scan(&left); err != nil {
			return err
		}
		if left {
			return fmt.Errorf("batch %s/%d: recipients without an outcome: %w", sendID, seq, errInvalid)
		}
		if accepted {
			if err := insertMessageSends(ctx, tx, sendID, seq, now); err != nil {
				return err
			}
		}
		if err := tx.QueryRowContext(ctx, sendPendingLeftSQL, sendID).Scan(&left); err != nil {
			return err
		}
		if !left {
			if _, err := tx.ExecContext(ctx, `UPDATE sends SET done_time = ? WHERE id = ? AND done_time IS NULL`,
				now, sendID); err != nil {
				return err
			}
		}
		return nil
	})
}

// insertMessageSends writes the MessageSendEvent of each accepted
// recipient of the batch and their outbox entries, two statements however
// many recipients.
func insertMessageSends(ctx context.Context, tx *sql.Tx, sendID string, seq int, now int64) error {
	first, err := nextID(ctx, tx)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, messageSendSQL, first, store.MessageSendEvent, now, sendID, seq)
	if err != nil {
		return fmt.Errorf("message.send events: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO event_outbox (event_id)
		SELECT id FROM profile_events WHERE id >= ? AND id < ?`, first, first+n); err != nil {
		return fmt.Errorf("outbox entries of message.send events: %w", err)
	}
	return nil
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
