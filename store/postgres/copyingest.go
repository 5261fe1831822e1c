package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The COPY path of IngestReports: what ingestSQL does in one statement,
// done in one transaction of a few statements, each much cheaper for the
// server:
//
//  1. one query draws the reports' ids from the shared sequence, in the
//     order of the body (drawIDsSQL);
//  2. COPY writes the reports, in key order, then their events and their
//     outbox entries: PostgreSQL inserts copied rows a page at a time, and
//     there is no unnesting of arrays, no sort of whole rows and no join
//     of the reports back to their input, which the statement pays for;
//     about half the server's CPU of the statement (BenchmarkBatchInsertCeiling);
//  3. one statement makes the rest (recipients, suppressions, bounce-rate
//     counts, rejected payloads), and only when the call has any.
//
// The COPY assumes every report is new, which is what a webhook mostly
// sends. Exactly-once still rests on the report key's unique index: a
// report already stored, or stored by another transaction meanwhile (the
// COPY waits for that one to commit, as ON CONFLICT would), makes the COPY
// fail on that index. The transaction is rolled back, leaving nothing (the
// ids drawn are lost, as ids of a rolled-back statement are), and the call
// is run again as the single statement, whose ON CONFLICT DO NOTHING skips
// the duplicates. A retried body thus costs a failed COPY more than
// before, usually of one row: its first key is already stored.
//
// The COPY takes the keys' locks in key order, as the statement does, and
// migration 0009 gives the key columns the "C" collation, so that the
// server's order is Go's byte order: two ingests, by either path, still
// cannot deadlock on keys.
//
// The statement stays the path of calls with both kinds of report and of
// duplicates; the COPY path is for every other call.

// drawIDsSQL draws $1 ids, one a row, in the order of the rows.
const drawIDsSQL = `SELECT nextval('delivery_reports_id_seq') FROM generate_series(1, $1::int4)`

// copyKind is what differs between delivery and tracking reports.
type copyKind struct {
	// copySQL writes the reports.
	copySQL string
	// keyConstraint is the unique constraint of the report key.
	keyConstraint string
	// compare orders the reports by key, as the key index does.
	compare  func(a *ingestArgs, i, j int) int
	writeRow func(c *copyRows, a *ingestArgs, i int, id int64)
}

var deliveryCopy = copyKind{
	copySQL: `COPY delivery_reports (id, message_id, status_id, error_id, done_at, connection_id, profile_id, email,
		outcome, event_name, rule, receive_time, payload, rules_version) FROM STDIN (FORMAT binary)`,
	keyConstraint: "delivery_reports_key",
	compare: func(a *ingestArgs, i, j int) int {
		if c := cmp.Compare(a.doneAt[i], a.doneAt[j]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.messageID[i], a.messageID[j]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.statusID[i], a.statusID[j]); c != 0 {
			return c
		}
		return cmp.Compare(a.errorID[i], a.errorID[j])
	},
	writeRow: func(c *copyRows, a *ingestArgs, i int, id int64) {
		c.row(14)
		c.int8(id)
		c.text(a.messageID[i])
		c.int4(a.statusID[i])
		c.int4(a.errorID[i])
		c.text(a.doneAt[i])
		writeReportTail(c, a, i)
	},
}

var trackingCopy = copyKind{
	copySQL: `COPY tracking_events (id, event_id, notification_type, message_id, connection_id, profile_id, email,
		outcome, event_name, rule, receive_time, payload, rules_version) FROM STDIN (FORMAT binary)`,
	keyConstraint: "tracking_events_key",
	compare: func(a *ingestArgs, i, j int) int {
		return cmp.Compare(a.trackingKey[i], a.trackingKey[j])
	},
	writeRow: func(c *copyRows, a *ingestArgs, i int, id int64) {
		c.row(13)
		c.int8(id)
		c.text(a.trackingKey[i])
		c.text(a.notificationType[i])
		c.text(a.messageID[i])
		writeReportTail(c, a, i)
	},
}

// writeReportTail writes the columns both report tables end with.
func writeReportTail(c *copyRows, a *ingestArgs, i int) {
	c.text(a.connectionID[i])
	c.text(a.profileID[i])
	c.text(a.email[i])
	c.int2(a.outcome[i])
	c.text(a.eventName[i])
	c.text(a.rule[i])
	c.timestamptz(a.receiveTime[i])
	c.bytea(a.payload[i])
	c.int8(a.rulesVersion[i])
}

const (
	copyEventsSQL = `COPY profile_events (id, name, time, profile_id, email, params) FROM STDIN (FORMAT binary)`
	copyOutboxSQL = `COPY event_outbox (event_id) FROM STDIN (FORMAT binary)`
)

// copyEffectsSQL makes the effects of the stored reports given as arrays,
// each with its ord in the call, as ingestSQL does for its own.
var copyEffectsSQL = `
WITH stored AS (
	SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::int2[], $5::text[], $6::timestamptz[],
			$7::timestamptz[], $8::text[], $9::int4[], $10::bool[], $11::text[], $12::text[], $13::int2[],
			$14::timestamptz[], $15::int8[], $20::timestamptz[])
		AS u(id, profile_id, email, outcome, event_name, receive_time, event_time, rcpt_send, rcpt_seq,
			suppress, reason, domain, counts_as, bucket, ord, suppress_until)
),` + ingestEffectsSQL(16)

// errKeyRace is a COPY that met a report another transaction stored since
// the call looked: the call is run again as the single statement.
var errKeyRace = errors.New("report stored concurrently")

// hasEffects reports whether report i of a does anything ingestEffectsSQL
// would act on.
func (a *ingestArgs) hasEffects(i int) bool {
	event := a.outcome[i] == int16(store.OutcomeEvent)
	return (event && (a.rcptSend[i] != nil || a.suppress[i])) ||
		(a.domain[i] != "" && (a.countsAs[i] == 1 || a.countsAs[i] == 2))
}

// copyIngest stores a the COPY way, in tx, and marks what it stored in
// res; errKeyRace when it must be run again as the statement.
func copyIngest(ctx context.Context, tx pgx.Tx, k *copyKind, a *ingestArgs, reports []store.Report, res *store.IngestResult) error {
	n := len(a.origin)
	ids := make([]int64, n)
	fresh := make([]int, n) // the reports to store: all of them, or the COPY fails
	if n > 0 {
		rows, err := tx.Query(ctx, drawIDsSQL, n)
		if err != nil {
			return err
		}
		i := 0
		var id int64
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			if i < n {
				ids[i], fresh[i] = id, i
			}
			i++
			return nil
		})
		if err != nil {
			return err
		}
		if i != n {
			return fmt.Errorf("drew %d ids for %d reports", i, n)
		}
	}
	conn := tx.Conn().PgConn()
	if len(fresh) > 0 {
		byKey := slices.Clone(fresh)
		slices.SortFunc(byKey, func(i, j int) int { return k.compare(a, i, j) })
		reportRows := newCopyStream(len(byKey), func(c *copyRows, row int) {
			i := byKey[row]
			k.writeRow(c, a, i, ids[i])
		})
		if _, err := conn.CopyFrom(ctx, reportRows, k.copySQL); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == codeUniqueViolation && pe.ConstraintName == k.keyConstraint {
				return errKeyRace
			}
			return err
		}

		var events []int
		for _, i := range fresh {
			if a.outcome[i] == int16(store.OutcomeEvent) {
				events = append(events, i)
			}
		}
		if len(events) > 0 {
			eventRows := newCopyStream(len(events), func(c *copyRows, row int) {
				i := events[row]
				c.row(6)
				c.int8(ids[i])
				c.text(a.eventName[i])
				c.timestamptz(a.eventTime[i])
				c.text(a.profileID[i])
				c.text(a.email[i])
				c.jsonb(a.paramsJSON[i])
			})
			if _, err := conn.CopyFrom(ctx, eventRows, copyEventsSQL); err != nil {
				return err
			}
			outboxRows := newCopyStream(len(events), func(c *copyRows, row int) {
				c.row(1)
				c.int8(ids[events[row]])
			})
			if _, err := conn.CopyFrom(ctx, outboxRows, copyOutboxSQL); err != nil {
				return err
			}
		}
	}

	var e effectsArgs
	for _, i := range fresh {
		if a.hasEffects(i) {
			e.add(a, i, ids[i])
		}
	}
	if len(e.id) > 0 || len(a.rejTime) > 0 {
		if _, err := tx.Exec(ctx, copyEffectsSQL, e.id, e.profileID, e.email, e.outcome, e.eventName,
			e.receiveTime, e.eventTime, e.rcptSend, e.rcptSeq, e.suppress, e.reason, e.domain, e.countsAs,
			e.bucket, e.ord, a.rejTime, a.rejType, a.rejReason, a.rejBody, e.suppressUntil); err != nil {
			return err
		}
	}

	for _, i := range fresh {
		o := a.origin[i]
		res.Stored[o], res.IDs[o] = true, ids[i]
		res.Accepted++
		if reports[o].Outcome == store.OutcomeEvent {
			res.Events++
		}
	}
	return nil
}

// effectsArgs are copyEffectsSQL's columns.
type effectsArgs struct {
	id, ord                        []int64
	profileID, email, eventName    []string
	outcome, countsAs              []int16
	receiveTime, eventTime, bucket []time.Time
	rcptSend                       []*string
	rcptSeq                        []int32
	suppress                       []bool
	reason, domain                 []string
	suppressUntil                  []*time.Time
}

func (e *effectsArgs) add(a *ingestArgs, i int, id int64) {
	e.id = append(e.id, id)
	e.ord = append(e.ord, int64(i+1))
	e.profileID = append(e.profileID, a.profileID[i])
	e.email = append(e.email, a.email[i])
	e.outcome = append(e.outcome, a.outcome[i])
	e.eventName = append(e.eventName, a.eventName[i])
	e.receiveTime = append(e.receiveTime, a.receiveTime[i])
	e.eventTime = append(e.eventTime, a.eventTime[i])
	e.rcptSend = append(e.rcptSend, a.rcptSend[i])
	e.rcptSeq = append(e.rcptSeq, a.rcptSeq[i])
	e.suppress = append(e.suppress, a.suppress[i])
	e.reason = append(e.reason, a.reason[i])
	e.domain = append(e.domain, a.domain[i])
	e.countsAs = append(e.countsAs, a.countsAs[i])
	e.bucket = append(e.bucket, a.bucket[i])
	e.suppressUntil = append(e.suppressUntil, a.suppressUntil[i])
}
