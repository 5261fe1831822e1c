package events

import (
	"context"
	"time"

	"github.com/ibmail/ibmail/store"
)

// lease is one process's view of a lease in the store. The store decides
// who holds it; this side only decides when to ask, and stops acting once
// its own clock says the lease may have run out, so that a process that was
// paused (GC, a stalled disk) does not act on a lease another has taken.
type lease struct {
	store store.EventLogStore
	name  string
	owner string
	ttl   time.Duration

	held       bool
	validUntil time.Time // held: act only before this
	renewAt    time.Time // held: renew from this on
	retryAt    time.Time // not held: ask again from this on
}

func newLease(st store.EventLogStore, name, owner string, ttl time.Duration) *lease {
	return &lease{store: st, name: name, owner: owner, ttl: ttl}
}

// hold reports whether the lease is this process's, renewing it a third of
// the way through and asking for it, when another holds it, as often: a
// holder that died is taken over within ttl plus a third.
func (l *lease) hold(ctx context.Context) (bool, error) {
	now := time.Now()
	if l.held && now.Before(l.renewAt) {
		return true, nil
	}
	if !l.held && now.Before(l.retryAt) {
		return false, nil
	}
	held, err := l.store.AcquireLease(ctx, l.name, l.owner, now, l.ttl)
	if err != nil {
		// Whether the lease is still ours is unknown: act no more until the
		// store says so.
		l.held = false
		return false, err
	}
	l.held = held
	if held {
		// From now, not from the answer: a slow answer shortens the lease
		// as this process sees it, never lengthens it.
		l.validUntil, l.renewAt = now.Add(l.ttl), now.Add(l.ttl/3)
	} else {
		l.retryAt = now.Add(l.ttl / 3)
	}
	return held, nil
}

// valid reports whether the lease is held and has not run out by this
// process's clock.
func (l *lease) valid() bool { return l.held && time.Now().Before(l.validUntil) }

// lost records that the store refused an operation under the lease.
func (l *lease) lost() {
	l.held = false
	l.retryAt = time.Now().Add(l.ttl / 3)
}

// release gives the lease back so that another process need not wait for
// it to run out. It runs at shutdown, after ctx ended, so it has its own.
func (l *lease) release() error {
	if !l.held {
		return nil
	}
	l.held = false
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return l.store.ReleaseLease(ctx, l.name, l.owner)
}
