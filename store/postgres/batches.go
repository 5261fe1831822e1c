package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

// claimSQL leases the batches due at $1: pending or ambiguous ones whose
// next attempt has come, and in-flight ones whose dispatcher let the lease
// expire. Each half of the OR reads its own partial index, so done batches,
// which pile up forever, are never read.
//
// A batch whose send's domain is held at $1 (blocked until after then or
// with no end, or paused; 3 = blocked, 4 = paused) is passed over, and so
// neither leased nor counted. held reads the few domains once (an
// InitPlan); when none is held, which is the usual case, the CASE never
// runs its sub-select and the claim costs what it did before domains were
// held. Otherwise each due batch looks its send's domain up by the send's
// primary key. The check is a scalar sub-select on purpose: written as NOT
// EXISTS, the planner turns it into an anti join that reads every send
// ever made. Neither sends nor domains are locked (FOR UPDATE OF b): a
// claim must not wait for, or block, the ingest of a platform event.
//
// FOR UPDATE SKIP LOCKED is what keeps two dispatchers, on any replicas,
// from claiming one batch: each locks the rows it picks, and passes over
// those another claim has locked instead of waiting for it. A row that
// another claim leased and committed after this statement's snapshot is
// re-checked on its new version, whose live lease no longer matches. The
// old state comes back from picked, as the UPDATE's RETURNING sees only
// the new one: it says whether the batch may have been sent.
const claimSQL = `
WITH held AS (
	SELECT array_agg(domain) AS domains FROM sending_domains
	WHERE state = 4 OR (state = 3 AND (until_time IS NULL OR until_time > $1))
),
picked AS (
	SELECT b.send_id, b.seq, b.state, CASE WHEN b.state = 2 THEN b.lease_expiry ELSE b.next_attempt_time END AS due
	FROM send_batches b
	WHERE ((b.state IN (1, 3) AND b.next_attempt_time <= $1) OR (b.state = 2 AND b.lease_expiry < $1))
		AND CASE WHEN (SELECT domains FROM held) IS NULL THEN true
			ELSE coalesce((SELECT s.from_domain FROM sends s WHERE s.id = b.send_id) <> ALL ((SELECT domains FROM held)::text[]), true)
		END
	ORDER BY due, b.send_id, b.seq
	LIMIT $2
	FOR UPDATE OF b SKIP LOCKED
)
UPDATE send_batches b SET state = 2, lease_owner = $3, lease_expiry = $4, attempts = b.attempts + 1
FROM picked WHERE b.send_id = picked.send_id AND b.seq = picked.seq
RETURNING b.send_id, b.seq, b.bulk_id, picked.state, b.attempts, b.next_attempt_time, b.last_error, picked.due`

// claimedRecipientsSQL reads the pending recipients of the claimed batches,
// on send_recipients_batch.
const claimedRecipientsSQL = `SELECT ` + recipientColumns + ` FROM send_recipients r
	JOIN unnest($1::text[], $2::int4[]) AS b(send_id, seq) ON r.send_id = b.send_id AND r.batch_seq = b.seq
	WHERE r.state = 1 ORDER BY r.send_id, r.batch_seq, r.seq`

// ClaimBatches leases up to limit due batches to owner, oldest due first,
// a send's batches in order. The lease, the sends and the recipients are
// read in one transaction, so that a claim that fails half way leases
// nothing: a batch leased but never handed out would later come back as
// maybe sent. The sends come with their content but without counts, which
// no dispatcher needs.
func (s *Store) ClaimBatches(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]store.ClaimedBatch, error) {
	if limit <= 0 {
		if s.closed.Load() {
			return nil, errClosed
		}
		return nil, nil
	}
	type claimed struct {
		c   store.ClaimedBatch
		due time.Time
	}
	var out []store.ClaimedBatch
	err := s.inTx(ctx, "claim batches", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, claimSQL, now, limit, owner, now.Add(lease))
		if err != nil {
			return err
		}
		cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (claimed, error) {
			var (
				c        claimed
				seq      int32
				state    int16
				attempts int32
			)
			err := row.Scan(&c.c.SendID, &seq, &c.c.BulkID, &state, &attempts, &c.c.NextAttemptTime, &c.c.LastError, &c.due)
			c.c.Seq, c.c.Attempts = int(seq), int(attempts)
			c.c.NextAttemptTime = utc(c.c.NextAttemptTime)
			c.c.State = store.BatchInFlight
			c.c.MaybeSent = store.BatchState(state) != store.BatchPending
			return c, err
		})
		if err != nil {
			return err
		}
		// RETURNING follows no order; the claim's own is restored here.
		slices.SortFunc(cs, func(a, b claimed) int {
			return cmp.Or(a.due.Compare(b.due), cmp.Compare(a.c.SendID, b.c.SendID), cmp.Compare(a.c.Seq, b.c.Seq))
		})
		out = make([]store.ClaimedBatch, len(cs))
		for i := range cs {
			out[i] = cs[i].c
		}
		if len(out) == 0 {
			return nil
		}
		return fillClaimed(ctx, tx, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// fillClaimed reads the sends and pending recipients of claimed batches, in
// one round trip.
func fillClaimed(ctx context.Context, tx pgx.Tx, out []store.ClaimedBatch) error {
	sendIDs := make([]string, 0, len(out))
	batchSends, batchSeqs := make([]string, len(out)), make([]int32, len(out))
	type batchKey struct {
		send string
		seq  int
	}
	index := make(map[batchKey]int, len(out))
	for i, c := range out {
		if i == 0 || !slices.Contains(sendIDs, c.SendID) {
			sendIDs = append(sendIDs, c.SendID)
		}
		batchSends[i], batchSeqs[i] = c.SendID, int32(c.Seq)
		index[batchKey{c.SendID, c.Seq}] = i
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+sendColumns+` FROM sends s WHERE s.id = ANY($1)`, sendIDs)
	b.Queue(claimedRecipientsSQL, batchSends, batchSeqs)
	br := tx.SendBatch(ctx, b)
	defer br.Close()

	rows, err := br.Query()
	if err != nil {
		return err
	}
	sends, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Send, error) {
		var (
			sn   store.Send
			done *time.Time
		)
		err := row.Scan(&sn.ID, &sn.SenderID, &sn.ConnectionID, &sn.CampaignID, &sn.IdempotencyKey, &sn.Subject,
			&sn.RecipientCount, &sn.CreateTime, &done, &sn.Content, &sn.RequestDigest, &sn.FromDomain)
		sn.CreateTime, sn.DoneTime = utc(sn.CreateTime), fromNullTime(done)
		return sn, err
	})
	if err != nil {
		return err
	}
	for i := range out {
		for _, sn := range sends {
			if sn.ID == out[i].SendID {
				out[i].Send = sn
			}
		}
	}
	rows, err = br.Query()
	if err != nil {
		return err
	}
	rs, err := pgx.CollectRows(rows, collectRecipient)
	if err != nil {
		return err
	}
	for _, rc := range rs {
		c := &out[index[batchKey{rc.SendID, rc.BatchSeq}]]
		c.Recipients = append(c.Recipients, rc)
	}
	return br.Close()
}

// leaseHeld is the condition under which owner ($3) may act on batch
// ($1, $2): it is in flight under owner's lease. Whether the lease has
// expired does not matter until another dispatcher claims the batch, which
// is what takes it away; CompleteBatch has no clock to compare with anyway.
const leaseHeld = `send_id = $1 AND seq = $2 AND state = 2 AND lease_owner = $3`

func errLeaseLost(sendID string, seq int, owner string) error {
	return fmt.Errorf("batch %s/%d of %q: %w", sendID, seq, owner, store.ErrLeaseLost)
}

// completeRecipientsSQL gives the batch's ($1, $2) recipients their
// outcomes and, to each one accepted that has no last event yet, $7 at $8
// as its last event: a report that got there first (by callbackData,
// before the message id was stored) stays. SET reads the row as it was, so
// both CASEs see the old last_event. 2 = accepted.
const completeRecipientsSQL = `UPDATE send_recipients r SET state = u.state, message_id = u.message_id, reason = u.reason,
	last_event = CASE WHEN u.state = 2 AND r.last_event = '' THEN $7 ELSE r.last_event END,
	last_event_time = CASE WHEN u.state = 2 AND r.last_event = '' THEN $8 ELSE r.last_event_time END
	FROM unnest($3::int4[], $4::int2[], $5::text[], $6::text[]) AS u(seq, state, message_id, reason)
	WHERE r.send_id = $1 AND r.batch_seq = $2 AND r.seq = u.seq`

// messageSendSQL makes the MessageSendEvent ($3 at $4) of every accepted
// recipient of the batch ($1, $2), with its outbox entry, in one
// statement whatever the number of recipients; ids come from the delivery
// reports' sequence, as every event's. Every recipient of a batch was
// pending until this CompleteBatch, so its accepted ones are exactly those
// it accepted.
const messageSendSQL = `WITH e AS (
	INSERT INTO profile_events (id, name, time, profile_id, email, params)
	SELECT nextval('delivery_reports_id_seq'), $3, $4, r.profile_id, r.email,
		jsonb_build_object('title', s.subject, 'sendId', s.id, 'campaignId', s.campaign_id,
			'senderId', s.sender_id, 'connectionId', s.connection_id, 'messageId', r.message_id)
	FROM send_recipients r JOIN sends s ON s.id = r.send_id
	WHERE r.send_id = $1 AND r.batch_seq = $2 AND r.state = 2
	ORDER BY r.seq
	RETURNING id
)
INSERT INTO event_outbox (event_id) SELECT id FROM e`

// CompleteBatch gives the batch's recipients their outcomes, marks it done
// and, when that was the send's last pending recipient, the send too, all
// in one transaction that changes nothing unless owner holds the lease.
// Every outcome must be final and about a recipient of this batch, and no
// recipient of the batch may stay pending: a done batch is never claimed
// again, so one would keep its send from ever being done.
//
// Each accepted recipient gets its MessageSendEvent, at the time
// CompleteBatch is called, with its outbox entry.
//
// The statements go in one pipelined round trip. The send's row is locked
// before its recipients are read: two batches of one send completed at once
// by two replicas would otherwise each see the other's recipients still
// pending, and neither would mark the send done. With the lock the second
// waits, and its later statements see the first one's commit.
func (s *Store) CompleteBatch(ctx context.Context, owner string, sendID string, seq int, outcomes []store.RecipientOutcome) error {
	last := make(map[int]int, len(outcomes)) // seq -> index of its last outcome
	for i, o := range outcomes {
		if !o.State.Final() {
			return fmt.Errorf("postgres: complete batch %s/%d: recipient %d: state %d is not final: %w", sendID, seq, o.Seq, o.State, errInvalid)
		}
		last[o.Seq] = i
	}
	n := len(last)
	seqs, states, messageIDs, reasons := make([]int32, 0, n), make([]int16, 0, n), make([]string, 0, n), make([]string, 0, n)
	accepted := false
	for i, o := range outcomes {
		if last[o.Seq] != i {
			continue // a repeated seq: the last outcome given wins
		}
		seqs, states = append(seqs, int32(o.Seq)), append(states, int16(o.State))
		messageIDs, reasons = append(messageIDs, o.MessageID), append(reasons, o.Reason)
		accepted = accepted || o.State == store.RecipientAccepted
	}
	doneAt := time.Now()
	return s.inTx(ctx, "complete batch", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`UPDATE send_batches SET state = 4, lease_owner = '', lease_expiry = NULL WHERE `+leaseHeld, sendID, seq, owner)
		b.Queue(`SELECT 1 FROM sends WHERE id = $1 FOR NO KEY UPDATE`, sendID)
		b.Queue(completeRecipientsSQL, sendID, seq, seqs, states, messageIDs, reasons, store.MessageSendEvent, doneAt)
		b.Queue(`SELECT EXISTS (SELECT 1 FROM send_recipients WHERE send_id = $1 AND batch_seq = $2 AND state = 1)`, sendID, seq)
		if accepted {
			b.Queue(messageSendSQL, sendID, seq, store.MessageSendEvent, doneAt)
		}
		b.Queue(`UPDATE sends SET done_time = $2 WHERE id = $1 AND done_time IS NULL
			AND NOT EXISTS (SELECT 1 FROM send_recipients WHERE send_id = $1 AND state = 1)`, sendID, doneAt)
		br := tx.SendBatch(ctx, b)
		defer br.Close()

		tag, err := br.Exec()
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errLeaseLost(sendID, seq, owner)
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		if tag, err = br.Exec(); err != nil {
			return err
		}
		if int(tag.RowsAffected()) != n {
			return fmt.Errorf("batch %s/%d: %d of %d outcomes are about no recipient of the batch: %w",
				sendID, seq, n-int(tag.RowsAffected()), n, errInvalid)
		}
		var left bool
		if err := br.QueryRow().Scan(&left); err != nil {
			return err
		}
		if left {
			return fmt.Errorf("batch %s/%d: recipients without an outcome: %w", sendID, seq, errInvalid)
		}
		if accepted {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("message.send events: %w", err)
			}
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		return br.Close()
	})
}

// RescheduleBatch puts a batch owner holds back as pending or ambiguous,
// due at next, and ends the lease.
func (s *Store) RescheduleBatch(ctx context.Context, owner string, sendID string, seq int, state store.BatchState, next time.Time, lastError string) error {
	if state != store.BatchPending && state != store.BatchAmbiguous {
		return fmt.Errorf("postgres: reschedule batch %s/%d: state %d: %w", sendID, seq, state, errInvalid)
	}
	return s.updateLeased(ctx, "reschedule batch", sendID, seq, owner,
		`UPDATE send_batches SET state = $4, next_attempt_time = $5, last_error = $6,
			lease_owner = '', lease_expiry = NULL WHERE `+leaseHeld,
		int16(state), next, lastError)
}

// ReleaseLeases hands owner's in-flight batches back as ambiguous.
func (s *Store) ReleaseLeases(ctx context.Context, owner string, now time.Time) (int, error) {
	var n int64
	err := s.run(ctx, "release leases", func() error {
		tag, err := s.pool.Exec(ctx, `UPDATE send_batches SET state = $1, next_attempt_time = $2,
			lease_owner = '', lease_expiry = NULL WHERE state = $3 AND lease_owner = $4`,
			int16(store.BatchAmbiguous), now, int16(store.BatchInFlight), owner)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

// ExtendLease moves the end of owner's lease on a batch to until.
func (s *Store) ExtendLease(ctx context.Context, owner string, sendID string, seq int, until time.Time) error {
	return s.updateLeased(ctx, "extend lease", sendID, seq, owner,
		`UPDATE send_batches SET lease_expiry = $4 WHERE `+leaseHeld, until)
}

// updateLeased runs one UPDATE of a batch conditioned on leaseHeld, and
// answers ErrLeaseLost when it matched nothing.
func (s *Store) updateLeased(ctx context.Context, op, sendID string, seq int, owner, query string, args ...any) error {
	return s.run(ctx, op, func() error {
		tag, err := s.pool.Exec(ctx, query, append([]any{sendID, seq, owner}, args...)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errLeaseLost(sendID, seq, owner)
		}
		return nil
	})
}
