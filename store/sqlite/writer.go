package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ibmail/ibmail/store"
)

// maxBatchRows bounds one group-commit transaction (reports plus rejected
// payloads). Past a few thousand rows the fsync is already amortised, and a
// bigger transaction only delays the callers at its front and grows the WAL.
const maxBatchRows = 5000

// Request states: the writer and a caller whose context ends race for a
// queued request, and exactly one of them wins.
const (
	stateQueued int32 = iota
	stateTaken
	stateCancelled
)

// request is one caller's write, waiting for the writer.
type request struct {
	reports  []store.Report
	params   []any // per report: the JSON of its Params, or nil
	rejected []store.RejectedPayload
	rows     int
	// job, when set, is a small write run inside the batch's transaction
	// (see Store.groupTx), and op names it in errors ("" : ingest).
	job func(ctx context.Context, tx *sql.Tx) error
	op  string

	state atomic.Int32
	done  chan struct{} // closed when res and err are final
	res   store.IngestResult
	err   error
}

// newRequest does, on the caller's goroutine, the work that needs no
// database, so that the single writer goroutine spends its time in SQLite.
func newRequest(reports []store.Report, rejected []store.RejectedPayload) *request {
	r := &request{
		reports:  reports,
		rejected: rejected,
		rows:     len(reports) + len(rejected),
		done:     make(chan struct{}),
	}
	r.params = make([]any, len(reports))
	for i := range reports {
		if reports[i].Outcome != store.OutcomeEvent || len(reports[i].Params) == 0 {
			continue
		}
		r.params[i] = encodeParams(reports[i].Params)
	}
	return r
}

// writer owns the write connection. Callers queue requests; the writer's
// goroutine takes all that are pending, up to maxBatchRows, and commits them
// in one transaction: one fsync for many webhook bodies.
type writer struct {
	db        *sql.DB
	ckpt      *checkpointer
	nextID    *sql.Stmt
	insOutbox *sql.Stmt
	// multis are the multi-row INSERTs, by table and row count.
	multis map[int]*sql.Stmt
	// args and counts are the writer goroutine's, reused by each
	// transaction.
	args        []any
	counts      domainCounts
	insRejected *sql.Stmt
	// Run only for reports about a send's recipient or that suppress.
	updRecipient   *sql.Stmt
	insSuppression *sql.Stmt
	// Run once per domain and bucket that a transaction's reports count in.
	addCounts *sql.Stmt

	mu     sync.Mutex
	queue  []*request
	closed bool
	wake   chan struct{} // capacity 1: "the queue may be non-empty"
	exited chan struct{}
	// direct counts the transactions run beside the queue (Store.writeTx),
	// so that close waits for them too.
	direct sync.WaitGroup

	// commits counts committed transactions, so that tests can see that
	// queued requests really share one.
	commits atomic.Int64

	// fault, when set by a test, fails a request inside its transaction, to
	// check that one bad request does not fail or ack the others.
	fault func(*request) error
}

const (
	// nextIDSQL is the id the next row of any of the tables that share
	// the event ids gets (see migrations 0008 and 0012): one above the
	// highest of all five, each read as the last entry of its primary key. The
	// writer reads it once per transaction and counts on from there in
	// Go; the single write connection serialises every transaction that
	// does, so no two can hand out one id.
	nextIDSQL = `SELECT max(
		(SELECT coalesce(max(id), 0) FROM delivery_reports),
		(SELECT coalesce(max(id), 0) FROM tracking_events),
		(SELECT coalesce(max(id), 0) FROM profile_events),
		(SELECT coalesce(max(id), 0) FROM domain_events),
		(SELECT coalesce(max(id), 0) FROM event_retractions)) + 1`
	// The conflict target is the report's key (a bare DO NOTHING would
	// cover every constraint): a clash on the id, which would be a bug in
	// the id counting, fails the transaction instead of passing for a
	// duplicate.
	// The outbox entries are how events get their positions in the event
	// log (see store/events.go): those of all the events a transaction
	// wrote, in one statement (see apply).
	insertEventSQL = `INSERT INTO profile_events
		(id, name, time, profile_id, email, params)
		VALUES (?, ?, ?, ?, ?, ?)`
	insertOutboxSQL = `INSERT INTO event_outbox (event_id) VALUES (?)`
	// insertOutboxFromSQL makes the outbox entries of every event from an
	// id on; OR FAIL as the multi-row INSERTs.
	insertOutboxFromSQL = `INSERT OR FAIL INTO event_outbox (event_id) SELECT id FROM profile_events WHERE id >= ?`
	insertRejectedSQL   = `INSERT INTO rejected_payloads
		(receive_time, content_type, reason, body)
		VALUES (?, ?, ?, ?)`
	// A report older than the recipient's last event does not replace it:
	// Infobip does not deliver reports in order. An equal time does, so
	// that of two events at one time the one ingested last shows. Any
	// report replaces the MessageSendEvent CompleteBatch gave (the last
	// parameter), whatever its time: every report about a message comes
	// after it was sent, but a report's doneAt can be earlier than the
	// store's clock when it stored Infobip's answer.
	updateRecipientSQL = `UPDATE send_recipients SET last_event = ?, last_event_time = ?
		WHERE send_id = ? AND seq = ? AND (last_event_time IS NULL OR last_event_time <= ? OR last_event = ?)`
	// The first suppression of an address stays: it says why the address
	// was first suppressed, and later bounces add nothing a send needs.
	// Deleting it, or its expiry, lets the next one in. Its create time is
	// the report's receive time: when this server learnt of the cause.
	insertSuppressionSQL = `INSERT INTO suppressions
		(email, profile_id, event_name, event_id, reason, create_time, expire_time, origin, cause_event_ids)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (email) DO UPDATE SET profile_id = excluded.profile_id, event_name = excluded.event_name,
			event_id = excluded.event_id, reason = excluded.reason, create_time = excluded.create_time,
			expire_time = excluded.expire_time, origin = excluded.origin, cause_event_ids = excluded.cause_event_ids
		WHERE suppressions.expire_time IS NOT NULL AND suppressions.expire_time <= excluded.create_time`
	// addCountsSQL adds a transaction's reports of one domain and bucket
	// to the bounce-rate counts.
	addCountsSQL = `INSERT INTO domain_report_counts (bucket, domain, reports, bounces) VALUES (?, ?, ?, ?)
		ON CONFLICT (bucket, domain) DO UPDATE SET reports = reports + excluded.reports, bounces = bounces + excluded.bounces`
)

func newWriter(db *sql.DB, ckpt *checkpointer) (*writer, error) {
	w := &writer{db: db, ckpt: ckpt, wake: make(chan struct{}, 1), exited: make(chan struct{}),
		multis: map[int]*sql.Stmt{}, counts: domainCounts{}}
	var err error
	// Prepared once on the single connection; tx.Stmt then reuses them.
	if w.nextID, err = db.Prepare(nextIDSQL); err != nil {
		return nil, err
	}
	if w.insOutbox, err = db.Prepare(insertOutboxFromSQL); err != nil {
		return nil, err
	}
	if w.insRejected, err = db.Prepare(insertRejectedSQL); err != nil {
		return nil, err
	}
	if w.updRecipient, err = db.Prepare(updateRecipientSQL); err != nil {
		return nil, err
	}
	if w.insSuppression, err = db.Prepare(insertSuppressionSQL); err != nil {
		return nil, err
	}
	if w.addCounts, err = db.Prepare(addCountsSQL); err != nil {
		return nil, err
	}
	if err := w.prepareMultis(db); err != nil {
		return nil, err
	}
	go w.run()
	return w, nil
}

// submit queues r and waits for its result. A caller whose context ends
// while r is still queued gets the context's error and r is never written;
// once the writer has taken r the caller waits for the commit, so that a
// success is never reported as a failure.
func (w *writer) submit(ctx context.Context, r *request) (store.IngestResult, error) {
	if err := ctx.Err(); err != nil {
		return store.IngestResult{}, err
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return store.IngestResult{}, errClosed
	}
	w.queue = append(w.queue, r)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}

	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(stateQueued, stateCancelled) {
			return store.IngestResult{}, ctx.Err()
		}
		<-r.done
	}
	return r.res, r.err
}

// enter admits a transaction run beside the queue, unless the writer is
// closed; leave must follow.
func (w *writer) enter() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.direct.Add(1)
	return true
}

func (w *writer) leave() { w.direct.Done() }

func (w *writer) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// close refuses new requests and returns once the queued ones are answered
// and the transactions run beside the queue have ended.
func (w *writer) close() error {
	w.mu.Lock()
	already := w.closed
	w.closed = true
	w.mu.Unlock()
	if !already {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	<-w.exited
	w.direct.Wait()
	errs := []error{w.nextID.Close(), w.insOutbox.Close(), w.insRejected.Close(), w.updRecipient.Close(),
		w.insSuppression.Close(), w.addCounts.Close()}
	for _, st := range w.multis {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

func (w *writer) run() {
	defer close(w.exited)
	var batch []*request
	for {
		batch = w.next(batch[:0])
		if batch == nil {
			return
		}
		w.process(batch)
		clear(batch)
	}
}

// next waits for queued requests and claims as many as fit in one
// transaction. It returns nil when the writer is closed and drained.
func (w *writer) next(batch []*request) []*request {
	for {
		w.mu.Lock()
		n, rows := 0, 0
		for n < len(w.queue) {
			r := w.queue[n]
			if len(batch) > 0 && rows+r.rows > maxBatchRows {
				break
			}
			n++
			// A request cancelled by its caller is dropped unanswered:
			// its caller has already returned.
			if r.state.CompareAndSwap(stateQueued, stateTaken) {
				batch = append(batch, r)
				rows += r.rows
			}
		}
		rest := copy(w.queue, w.queue[n:])
		clear(w.queue[rest:])
		w.queue = w.queue[:rest]
		closed := w.closed
		w.mu.Unlock()

		if len(batch) > 0 {
			return batch
		}
		if n > 0 {
			continue
		}
		if closed {
			return nil
		}
		<-w.wake
	}
}

// process commits batch in one transaction. If that fails, the failure may
// belong to a single request, so each is retried alone: only the requests
// that fail on their own get an error, and the rest are not held hostage.
func (w *writer) process(batch []*request) {
	err := w.commit(batch)
	if err != nil && len(batch) > 1 {
		for _, r := range batch {
			r.err = w.commit([]*request{r})
			w.answer(r)
		}
		return
	}
	for _, r := range batch {
		r.err = err
		w.answer(r)
	}
}

func (w *writer) answer(r *request) {
	if r.err != nil {
		op := r.op
		if op == "" {
			op = "ingest"
		}
		r.res = store.IngestResult{}
		r.err = wrapErr(op, r.err)
	}
	close(r.done)
}

// commit writes batch in one transaction. The writer's own context is not
// any caller's: one caller giving up must not abort the others' commit.
func (w *writer) commit(batch []*request) (err error) {
	ctx := context.Background()
	for _, r := range batch {
		if w.fault != nil {
			if err := w.fault(r); err != nil {
				return err
			}
		}
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
				err = errors.Join(err, rbErr)
			}
		}
	}()
	var first int64
	if err := tx.StmtContext(ctx, w.nextID).QueryRowContext(ctx).Scan(&first); err != nil {
		return fmt.Errorf("next id: %w", err)
	}
	if err := w.apply(ctx, tx, batch, first); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		// A failed COMMIT can leave SQLite's transaction open on the
		// connection, which would make every later BEGIN fail.
		_, _ = w.db.ExecContext(ctx, "ROLLBACK")
		return err
	}
	w.commits.Add(1)
	w.ckpt.committed()
	return nil
}

// rowsPerInsert is how many rows one multi-row INSERT of the writer
// writes. One statement per row spent more in database/sql and in starting
// and resetting the statement than SQLite spent inserting; past a few dozen
// rows the overhead is amortised, and a longer statement only binds more.
const rowsPerInsert = 64

// Multi-row statements, by table. OR FAIL: a statement that may abort
// half-way otherwise keeps a statement journal, a copy of every page it
// changes, to undo only itself; here any failed statement fails the whole
// transaction, which the rollback undoes anyway. (One that gives the
// rowid keeps one regardless: see the events in writer.apply.) Each is
// prepared once per row count on the write connection (see writer.multi).
const (
	tableReports = iota
	tableTracking
	tableEvents
	// The platform-events webhook's tables (see writer.applyDomainEvents).
	tableDomainEvents
	tableDomains
	tableCount
)

var multiInsertSQL = [tableCount]struct{ head, row, tail string }{
	tableReports: {`INSERT OR FAIL INTO delivery_reports
		(id, message_id, status_id, error_id, done_at, connection_id, profile_id, email,
		 outcome, event_name, rule, receive_time, payload, rules_version) VALUES `, `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		` ON CONFLICT (done_at, message_id, status_id, error_id) DO NOTHING`},
	tableTracking: {`INSERT OR FAIL INTO tracking_events
		(id, event_id, notification_type, message_id, connection_id, profile_id, email,
		 outcome, event_name, rule, receive_time, payload, rules_version) VALUES `, `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		` ON CONFLICT (event_id) DO NOTHING`},
	tableEvents: {`INSERT OR FAIL INTO profile_events (id, name, time, profile_id, email, params) VALUES `,
		`(?, ?, ?, ?, ?, ?)`, ``},
	tableDomainEvents: {`INSERT OR FAIL INTO domain_events (` + domainEventColumns + `) VALUES `,
		`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, ` ON CONFLICT (event_id) WHERE event_id <> '' DO NOTHING`},
	tableDomains: {`INSERT OR FAIL INTO sending_domains (` + domainColumns + `) VALUES `,
		`(?, ?, ?, ?, ?, ?, ?, ?)`, putDomainConflictSQL},
}

// storedIDsSQL reads which of a chunk's ids a table holds, when its INSERT
// stored fewer rows than it had: the others were duplicates.
var storedIDsSQL = [tableCount]string{
	tableReports:      `SELECT id FROM delivery_reports WHERE id BETWEEN ? AND ?`,
	tableTracking:     `SELECT id FROM tracking_events WHERE id BETWEEN ? AND ?`,
	tableDomainEvents: `SELECT id FROM domain_events WHERE id BETWEEN ? AND ?`,
}

// multi returns the INSERT of rows rows into table, bound to tx. rows is
// a power of two up to rowsPerInsert: newWriter prepares those, and a chunk
// of another size is cut into such pieces (see chunkRows), so that no
// statement is ever prepared inside a transaction, which on the single
// write connection would wait for itself.
func (w *writer) multi(ctx context.Context, tx *sql.Tx, bound map[int]*sql.Stmt, table, rows int) *sql.Stmt {
	key := table*(rowsPerInsert+1) + rows
	if st, ok := bound[key]; ok {
		return st
	}
	st := tx.StmtContext(ctx, w.multis[key])
	bound[key] = st
	return st
}

// prepareMultis prepares the multi-row INSERTs of every table for every
// power of two up to rowsPerInsert.
func (w *writer) prepareMultis(db *sql.DB) error {
	for table, q := range multiInsertSQL {
		for rows := 1; rows <= rowsPerInsert; rows *= 2 {
			var sb strings.Builder
			sb.WriteString(q.head)
			for i := range rows {
				if i > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString(q.row)
			}
			sb.WriteString(q.tail)
			st, err := db.Prepare(sb.String())
			if err != nil {
				return err
			}
			w.multis[table*(rowsPerInsert+1)+rows] = st
		}
	}
	return nil
}

// chunkRows is how many of n rows the next statement takes: rowsPerInsert,
// or the largest power of two below n.
func chunkRows(n int) int {
	if n >= rowsPerInsert {
		return rowsPerInsert
	}
	return 1 << (bits.Len(uint(n)) - 1)
}

// pending is one report of the transaction: its request, its index there,
// and the id it takes if stored.
type pending struct {
	r  *request
	i  int
	id int64
}

// apply writes batch inside the current transaction and records each
// request's result. Every report takes the next id, in request order,
// whether or not it turns out a duplicate (a duplicate's id stays unused):
// that lets one statement insert many rows. Reports are deduplicated by
// their kind's unique key: "DO NOTHING" changes no row, which also catches a
// key repeated within the batch (the first in request order is stored, as
// the chunks of a table run in that order), so a report's recipient,
// suppression and count are only touched the first time it comes. A
// stored report's event takes the report's id.
func (w *writer) apply(ctx context.Context, tx *sql.Tx, batch []*request, first int64) error {
	// A run that failed after counting (a job's error, say) left its
	// counts unwritten: its requests count again when retried.
	clear(w.counts)
	bound := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range bound {
			st.Close()
		}
	}()
	next := first
	var byTable [2][]pending
	for _, r := range batch {
		r.res = store.IngestResult{Stored: make([]bool, len(r.reports)), IDs: make([]int64, len(r.reports))}
		for i := range r.reports {
			t := tableReports
			if r.reports[i].Kind == store.ReportTracking {
				t = tableTracking
			}
			byTable[t] = append(byTable[t], pending{r, i, next})
			next++
		}
	}
	args := w.args[:0]
	defer func() { clear(args); w.args = args[:0] }()
	for t, ps := range byTable {
		for len(ps) > 0 {
			chunk := ps[:chunkRows(len(ps))]
			ps = ps[len(chunk):]
			args = args[:0]
			for _, p := range chunk {
				rp := &p.r.reports[p.i]
				if t == tableTracking {
					args = append(args, p.id, rp.TrackingKey, rp.NotificationType, rp.Key.MessageID,
						rp.ConnectionID, rp.ProfileID, rp.Email, int64(rp.Outcome), rp.EventName, rp.Rule,
						micros(rp.ReceiveTime), rp.Payload, rp.RulesVersion)
				} else {
					args = append(args, p.id,
						rp.Key.MessageID, rp.Key.StatusID, rp.Key.ErrorID, store.NormalizeDoneAt(rp.Key.DoneAt),
						rp.ConnectionID, rp.ProfileID, rp.Email, int64(rp.Outcome), rp.EventName, rp.Rule,
						micros(rp.ReceiveTime), rp.Payload, rp.RulesVersion)
				}
			}
			st := w.multi(ctx, tx, bound, t, len(chunk))
			out, err := st.ExecContext(ctx, args...)
			if err != nil {
				return fmt.Errorf("insert reports: %w", err)
			}
			n, err := out.RowsAffected()
			if err != nil {
				return err
			}
			if int(n) == len(chunk) {
				for _, p := range chunk {
					p.r.res.Stored[p.i], p.r.res.IDs[p.i] = true, p.id
				}
				continue
			}
			if err := markStored(ctx, tx, storedIDsSQL[t], chunk); err != nil {
				return err
			}
		}
	}

	// The events, and what the stored reports change, in request order.
	var events []pending
	for _, r := range batch {
		res := &r.res
		for i := range r.reports {
			if !res.Stored[i] {
				res.Duplicates++
				continue
			}
			res.Accepted++
			rp := &r.reports[i]
			w.counts.add(rp)
			if rp.Outcome == store.OutcomeEvent {
				res.Events++
			}
		}
	}
	id := first
	for _, r := range batch {
		for i := range r.reports {
			if r.res.Stored[i] && r.reports[i].Outcome == store.OutcomeEvent {
				events = append(events, pending{r, i, id})
			}
			id++
		}
	}
	// One row a statement, unlike the reports: an INSERT of several rows
	// that gives the rowid keeps a statement journal, whatever its
	// conflict clause (SQLite checks each rowid is an integer, and may
	// abort on it), and the journal copies every page that existed before
	// the statement the first time it changes it. The activity index takes
	// each event on a page of its own (by profile), so that is a page copy
	// per event; a single-row INSERT keeps no journal, and the statement
	// overhead it costs instead is less.
	if len(events) > 0 {
		st := w.multi(ctx, tx, bound, tableEvents, 1)
		for _, p := range events {
			rp := &p.r.reports[p.i]
			if _, err := st.ExecContext(ctx, p.id, rp.EventName, micros(rp.EventTime), rp.ProfileID, rp.Email, p.r.params[p.i]); err != nil {
				return fmt.Errorf("insert events: %w", err)
			}
		}
	}
	if len(events) > 0 {
		// The outbox entries of every event this transaction wrote: the
		// ids from first on are all its own, as the single write
		// connection, locked from BEGIN, runs nothing else meanwhile.
		if _, err := tx.StmtContext(ctx, w.insOutbox).ExecContext(ctx, first); err != nil {
			return fmt.Errorf("insert outbox entries: %w", err)
		}
	}
	var updRecipient, insSuppression *sql.Stmt
	for _, p := range events {
		rp := &p.r.reports[p.i]
		if rp.Recipient == nil && !rp.Suppress {
			continue
		}
		if updRecipient == nil {
			updRecipient = tx.StmtContext(ctx, w.updRecipient)
			defer updRecipient.Close()
			insSuppression = tx.StmtContext(ctx, w.insSuppression)
			defer insSuppression.Close()
		}
		if err := applySending(ctx, updRecipient, insSuppression, rp, p.id); err != nil {
			return fmt.Errorf("report %d: %w", p.i, err)
		}
	}
	// The soft-bounce counts, after the suppressions the events made: an
	// address they suppressed is suppressed already.
	works := make([]store.SoftBounceWork, len(batch))
	counted := false
	for k, r := range batch {
		works[k] = store.SoftBounceWorkOf(r.reports, r.res.Stored, r.res.IDs)
		counted = counted || !works[k].Empty()
	}
	if counted {
		if insSuppression == nil {
			insSuppression = tx.StmtContext(ctx, w.insSuppression)
			defer insSuppression.Close()
		}
		reached, err := countSoftBounces(ctx, tx, insSuppression, works)
		if err != nil {
			return fmt.Errorf("soft bounces: %w", err)
		}
		for k, r := range batch {
			r.res.SoftBounceLimitsReached = reached[k]
		}
	}
	var insRejected *sql.Stmt
	for _, r := range batch {
		for i := range r.rejected {
			if insRejected == nil {
				insRejected = tx.StmtContext(ctx, w.insRejected)
				defer insRejected.Close()
			}
			p := &r.rejected[i]
			if _, err := insRejected.ExecContext(ctx, micros(p.ReceiveTime), p.ContentType, p.Reason, p.Body); err != nil {
				return fmt.Errorf("insert rejected payload %d: %w", i, err)
			}
		}
	}
	for _, r := range batch {
		if r.job != nil {
			if err := r.job(ctx, tx); err != nil {
				return fmt.Errorf("%s: %w", r.op, err)
			}
		}
	}
	defer clear(w.counts)
	return w.counts.write(ctx, tx.StmtContext(ctx, w.addCounts))
}

// markStored marks the reports of chunk whose ids the table holds, read
// with query (storedIDsSQL) over the chunk's range of ids.
func markStored(ctx context.Context, tx *sql.Tx, query string, chunk []pending) error {
	rows, err := tx.QueryContext(ctx, query, chunk[0].id, chunk[len(chunk)-1].id)
	if err != nil {
		return err
	}
	defer rows.Close()
	have := make(map[int64]bool, len(chunk))
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, p := range chunk {
		if have[p.id] {
			p.r.res.Stored[p.i], p.r.res.IDs[p.i] = true, p.id
		}
	}
	return nil
}

// applySending gives a newly stored event to the send recipient the report
// is about and to the suppression list. A recipient that does not exist is
// not an error: the report is stored, and the event kept, regardless.
func applySending(ctx context.Context, updRecipient, insSuppression *sql.Stmt, rp *store.Report, eventID int64) error {
	if rp.Recipient != nil {
		t := micros(rp.EventTime)
		if _, err := updRecipient.ExecContext(ctx, rp.EventName, t, rp.Recipient.SendID, rp.Recipient.Seq, t,
			store.MessageSendEvent); err != nil {
			return fmt.Errorf("update recipient: %w", err)
		}
	}
	if rp.Suppress {
		if _, err := insSuppression.ExecContext(ctx, rp.Email, rp.ProfileID, rp.EventName, eventID,
			store.SuppressionReason(rp), micros(rp.ReceiveTime), expireMicros(rp.ReceiveTime, rp.SuppressFor),
			int64(store.SuppressionFromEvent), ""); err != nil {
			return fmt.Errorf("insert suppression: %w", err)
		}
	}
	return nil
}

// IngestReports stores reports, their events and rejected in one durable
// transaction, shared with whatever other writes are queued at the time.
func (s *Store) IngestReports(ctx context.Context, reports []store.Report, rejected []store.RejectedPayload) (store.IngestResult, error) {
	if err := store.CheckReportKinds(reports); err != nil {
		return store.IngestResult{}, fmt.Errorf("sqlite: ingest: %w", err)
	}
	if len(reports) == 0 && len(rejected) == 0 {
		// Nothing to make durable: no reason to wait for a commit.
		if err := ctx.Err(); err != nil {
			return store.IngestResult{}, err
		}
		if s.w.isClosed() {
			return store.IngestResult{}, errClosed
		}
		return store.IngestResult{Stored: []bool{}, IDs: []int64{}}, nil
	}
	return s.w.submit(ctx, newRequest(reports, rejected))
}

// groupTx runs fn inside the writer's next transaction, shared with the
// ingests queued at the time, rather than in one of its own as writeTx
// does: for small writes that follow an ingest (the soft-bounce counts of
// its reports), which would otherwise each pay a commit, and an fsync, of
// their own. fn may run more than once (a failed shared transaction is
// retried request by request), so it must set its results only from what
// it reads in that run; an error of fn fails only its own request. rows
// is its share of the transaction's maxBatchRows.
func (s *Store) groupTx(ctx context.Context, op string, rows int, fn func(ctx context.Context, tx *sql.Tx) error) error {
	_, err := s.w.submit(ctx, &request{job: fn, op: op, rows: max(rows, 1), done: make(chan struct{})})
	return err
}

// SaveRejectedPayload durably keeps a refused payload.
func (s *Store) SaveRejectedPayload(ctx context.Context, p store.RejectedPayload) error {
	_, err := s.w.submit(ctx, newRequest(nil, []store.RejectedPayload{p}))
	return err
}
