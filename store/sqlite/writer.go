package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	db          *sql.DB
	ckpt        *checkpointer
	nextID      *sql.Stmt
	insReport   *sql.Stmt
	insTracking *sql.Stmt
	insEvent    *sql.Stmt
	insOutbox   *sql.Stmt
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
	// the event ids gets (see migration 0008): one above the highest of
	// all four, each read as the last entry of its primary key. The
	// writer reads it once per transaction and counts on from there in
	// Go; the single write connection serialises every transaction that
	// does, so no two can hand out one id.
	nextIDSQL = `SELECT max(
		(SELECT coalesce(max(id), 0) FROM delivery_reports),
		(SELECT coalesce(max(id), 0) FROM tracking_events),
		(SELECT coalesce(max(id), 0) FROM profile_events),
		(SELECT coalesce(max(id), 0) FROM domain_events)) + 1`
	// The conflict target is the report's key (a bare DO NOTHING would
	// cover every constraint): a clash on the id, which would be a bug in
	// the id counting, fails the transaction instead of passing for a
	// duplicate.
	insertReportSQL = `INSERT INTO delivery_reports
		(id, message_id, status_id, error_id, done_at, connection_id, profile_id, email,
		 outcome, event_name, rule, receive_time, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (done_at, message_id, status_id, error_id) DO NOTHING`
	insertTrackingSQL = `INSERT INTO tracking_events
		(id, event_id, notification_type, message_id, connection_id, profile_id, email,
		 outcome, event_name, rule, receive_time, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (event_id) DO NOTHING`
	insertEventSQL = `INSERT INTO profile_events
		(id, name, time, profile_id, email, params)
		VALUES (?, ?, ?, ?, ?, ?)`
	// The outbox entry is how the event gets its position in the event
	// log; see store/events.go.
	insertOutboxSQL   = `INSERT INTO event_outbox (event_id) VALUES (?)`
	insertRejectedSQL = `INSERT INTO rejected_payloads
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
	// Deleting it lets the next one in. Its create time is the report's
	// receive time: when this server learnt of the cause.
	insertSuppressionSQL = `INSERT INTO suppressions
		(email, profile_id, event_name, event_id, reason, create_time)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (email) DO NOTHING`
	// addCountsSQL adds a transaction's reports of one domain and bucket
	// to the bounce-rate counts.
	addCountsSQL = `INSERT INTO domain_report_counts (bucket, domain, reports, bounces) VALUES (?, ?, ?, ?)
		ON CONFLICT (bucket, domain) DO UPDATE SET reports = reports + excluded.reports, bounces = bounces + excluded.bounces`
)

func newWriter(db *sql.DB, ckpt *checkpointer) (*writer, error) {
	w := &writer{db: db, ckpt: ckpt, wake: make(chan struct{}, 1), exited: make(chan struct{})}
	var err error
	// Prepared once on the single connection; tx.Stmt then reuses them.
	if w.nextID, err = db.Prepare(nextIDSQL); err != nil {
		return nil, err
	}
	if w.insReport, err = db.Prepare(insertReportSQL); err != nil {
		return nil, err
	}
	if w.insTracking, err = db.Prepare(insertTrackingSQL); err != nil {
		return nil, err
	}
	if w.insEvent, err = db.Prepare(insertEventSQL); err != nil {
		return nil, err
	}
	if w.insOutbox, err = db.Prepare(insertOutboxSQL); err != nil {
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
	return errors.Join(w.nextID.Close(), w.insReport.Close(), w.insTracking.Close(), w.insEvent.Close(),
		w.insOutbox.Close(), w.insRejected.Close(), w.updRecipient.Close(), w.insSuppression.Close(), w.addCounts.Close())
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
		r.res = store.IngestResult{}
		r.err = wrapErr("ingest", r.err)
	}
	close(r.done)
}

// commit writes batch in one transaction. The writer's own context is not
// any caller's: one caller giving up must not abort the others' commit.
func (w *writer) commit(batch []*request) (err error) {
	ctx := context.Background()
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
	st := txStmts{
		insReport:      tx.StmtContext(ctx, w.insReport),
		insTracking:    tx.StmtContext(ctx, w.insTracking),
		insEvent:       tx.StmtContext(ctx, w.insEvent),
		insOutbox:      tx.StmtContext(ctx, w.insOutbox),
		insRejected:    tx.StmtContext(ctx, w.insRejected),
		updRecipient:   tx.StmtContext(ctx, w.updRecipient),
		insSuppression: tx.StmtContext(ctx, w.insSuppression),
		counts:         domainCounts{},
	}
	if err := tx.StmtContext(ctx, w.nextID).QueryRowContext(ctx).Scan(&st.next); err != nil {
		return fmt.Errorf("next id: %w", err)
	}
	for _, r := range batch {
		if err := w.apply(ctx, &st, r); err != nil {
			return err
		}
	}
	if err := st.counts.write(ctx, tx.StmtContext(ctx, w.addCounts)); err != nil {
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

// txStmts are the writer's statements bound to the current transaction,
// with the transaction's next id and the bounce-rate counts it adds up.
type txStmts struct {
	insReport, insTracking, insEvent *sql.Stmt
	insRejected, insOutbox           *sql.Stmt
	updRecipient, insSuppression     *sql.Stmt
	next                             int64
	counts                           domainCounts
}

// apply writes one request inside the current transaction and records its
// result. Reports are deduplicated by their kind's unique key: "DO NOTHING"
// changes no row, which also catches a key repeated within the batch, so a
// report's recipient, suppression and count are only touched the first
// time it comes. Each stored report takes the transaction's next id, and
// its event the same.
func (w *writer) apply(ctx context.Context, st *txStmts, r *request) error {
	if w.fault != nil {
		if err := w.fault(r); err != nil {
			return err
		}
	}
	res := store.IngestResult{Stored: make([]bool, len(r.reports))}
	for i := range r.reports {
		rp := &r.reports[i]
		id := st.next
		var (
			out sql.Result
			err error
		)
		if rp.Kind == store.ReportTracking {
			out, err = st.insTracking.ExecContext(ctx, id, rp.TrackingKey, rp.NotificationType, rp.Key.MessageID,
				rp.ConnectionID, rp.ProfileID, rp.Email, int64(rp.Outcome), rp.EventName, rp.Rule,
				micros(rp.ReceiveTime), rp.Payload)
		} else {
			out, err = st.insReport.ExecContext(ctx, id,
				rp.Key.MessageID, rp.Key.StatusID, rp.Key.ErrorID, store.NormalizeDoneAt(rp.Key.DoneAt),
				rp.ConnectionID, rp.ProfileID, rp.Email, int64(rp.Outcome), rp.EventName, rp.Rule,
				micros(rp.ReceiveTime), rp.Payload)
		}
		if err != nil {
			return fmt.Errorf("insert report %d: %w", i, err)
		}
		n, err := out.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			res.Duplicates++
			continue
		}
		st.next++
		res.Accepted++
		res.Stored[i] = true
		st.counts.add(rp)
		if rp.Outcome != store.OutcomeEvent {
			continue
		}
		if _, err := st.insEvent.ExecContext(ctx, id, rp.EventName, micros(rp.EventTime), rp.ProfileID, rp.Email, r.params[i]); err != nil {
			return fmt.Errorf("insert event of report %d: %w", i, err)
		}
		if _, err := st.insOutbox.ExecContext(ctx, id); err != nil {
			return fmt.Errorf("insert outbox entry of report %d: %w", i, err)
		}
		res.Events++
		if err := applySending(ctx, st, rp, id); err != nil {
			return fmt.Errorf("report %d: %w", i, err)
		}
	}
	for i := range r.rejected {
		p := &r.rejected[i]
		if _, err := st.insRejected.ExecContext(ctx, micros(p.ReceiveTime), p.ContentType, p.Reason, p.Body); err != nil {
			return fmt.Errorf("insert rejected payload %d: %w", i, err)
		}
	}
	r.res = res
	return nil
}

// applySending gives a newly stored event to the send recipient the report
// is about and to the suppression list. A recipient that does not exist is
// not an error: the report is stored, and the event kept, regardless.
func applySending(ctx context.Context, st *txStmts, rp *store.Report, eventID int64) error {
	if rp.Recipient != nil {
		t := micros(rp.EventTime)
		if _, err := st.updRecipient.ExecContext(ctx, rp.EventName, t, rp.Recipient.SendID, rp.Recipient.Seq, t,
			store.MessageSendEvent); err != nil {
			return fmt.Errorf("update recipient: %w", err)
		}
	}
	if rp.Suppress {
		if _, err := st.insSuppression.ExecContext(ctx, rp.Email, rp.ProfileID, rp.EventName, eventID,
			store.SuppressionReason(rp), micros(rp.ReceiveTime)); err != nil {
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
		return store.IngestResult{Stored: []bool{}}, nil
	}
	return s.w.submit(ctx, newRequest(reports, rejected))
}

// SaveRejectedPayload durably keeps a refused payload.
func (s *Store) SaveRejectedPayload(ctx context.Context, p store.RejectedPayload) error {
	_, err := s.w.submit(ctx, newRequest(nil, []store.RejectedPayload{p}))
	return err
}
