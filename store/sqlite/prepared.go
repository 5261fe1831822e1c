package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// preparedReads keeps the read statements that webhooks run for every body
// prepared on the read connections. The driver prepares a statement for
// every query it is given and finalises it after: for a one-row lookup,
// parsing the SQL cost more than running it. database/sql prepares a
// cached *sql.Stmt on each connection once, as the connection first runs
// it. The cache holds a fixed set of query texts (callers pad IN lists to
// a power of two), so it never grows past a few dozen statements.
type preparedReads struct {
	db     *sql.DB
	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	closed bool
}

func newPreparedReads(db *sql.DB) *preparedReads {
	return &preparedReads{db: db, stmts: make(map[string]*sql.Stmt)}
}

// stmt returns query prepared.
func (p *preparedReads) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	if st, ok := p.stmts[query]; ok {
		return st, nil
	}
	st, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	p.stmts[query] = st
	return st, nil
}

// close closes every statement; stmt refuses from then on.
func (p *preparedReads) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for _, st := range p.stmts {
		errs = append(errs, st.Close())
	}
	clear(p.stmts)
	return errors.Join(errs...)
}

// padPow2 pads values to a power-of-two length by repeating the last, so
// that IN lists of any length up to inChunk take one of a few query texts.
// A repeated value in an IN list matches nothing more.
func padPow2(values []any) []any {
	n := 1
	for n < len(values) {
		n *= 2
	}
	n = min(n, inChunk)
	if len(values) == 0 || len(values) >= n {
		return values
	}
	padded := make([]any, n)
	copy(padded, values)
	for i := len(values); i < n; i++ {
		padded[i] = values[len(values)-1]
	}
	return padded
}
