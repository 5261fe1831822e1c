package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ibmail/ibmail/store"
)

const (
	// probeInterval is how long a store probe's answer is reused.
	probeInterval = time.Second
	// probeTimeout bounds one probe, well below the timeouts of load
	// balancers' probes.
	probeTimeout = 2 * time.Second
)

// storeProbe answers /readyz and the backlog gauges from the store at most
// once per probeInterval each, however often they are asked: both are served
// without a token on the listener Infobip reaches, so what they cost the
// store must not follow the request rate. Failures are reused too, so that
// a struggling store is not asked more often. Callers that arrive while a
// read is running wait for it and share its answer; the read runs on a
// context of its own, so that a caller that hangs up cannot make it fail
// for everyone else.
type storeProbe struct {
	store store.Store
	log   *slog.Logger
	// verifyKey, when set, is part of readiness: a replica whose encryption
	// key a rotation retired must not take traffic it cannot serve.
	verifyKey func(context.Context) error

	pingMu  sync.Mutex
	pingAt  time.Time
	pingErr error

	backlogMu  sync.Mutex
	backlogAt  time.Time
	backlog    store.Backlog
	backlogErr error
}

// Ping is the store's Ping, reused for probeInterval.
func (p *storeProbe) Ping(ctx context.Context) error {
	p.pingMu.Lock()
	defer p.pingMu.Unlock()
	if time.Since(p.pingAt) >= probeInterval {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		defer cancel()
		err := p.store.Ping(ctx)
		if err == nil && p.verifyKey != nil {
			if err = p.verifyKey(ctx); err != nil {
				p.pingErr, p.pingAt = err, time.Now()
				return err // Verify has said why, once
			}
		}
		if err != nil && p.pingErr == nil {
			p.log.Warn("not ready: the store does not answer", slog.Any("error", err))
		} else if err == nil && p.pingErr != nil {
			p.log.Info("ready again: the store answers")
		}
		p.pingErr, p.pingAt = err, time.Now()
	}
	return p.pingErr
}

// Backlog is the store's Backlog, reused for probeInterval; it implements
// store.BacklogStore for metrics.NewBacklogCollector.
func (p *storeProbe) Backlog(ctx context.Context, now time.Time) (store.Backlog, error) {
	p.backlogMu.Lock()
	defer p.backlogMu.Unlock()
	if time.Since(p.backlogAt) >= probeInterval {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		defer cancel()
		p.backlog, p.backlogErr = p.store.Backlog(ctx, now)
		p.backlogAt = time.Now()
	}
	return p.backlog, p.backlogErr
}
