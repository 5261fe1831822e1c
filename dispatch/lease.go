package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ibmail/ibmail/store"
)

// A claimed batch is this dispatcher's while its lease lasts, and the lease
// is renewed every LeaseRenewal while the batch is handled. A batch waiting
// for its connection's rate or concurrency therefore never becomes due
// again: another replica cannot take it over, this dispatcher's next claim
// does not hand it out a second time, and waiting spends none of its
// attempts.
//
// Renewal can still fail for a whole lease, when the store is out of this
// process's reach only. The batch may then be claimed again, by another
// replica or by this dispatcher itself, and the older claim is stale: it
// may say "never sent" of a batch that the other replica has sent since.
// A handler whose claim was lost or superseded therefore never sends; a
// newer claim by this dispatcher, marked maybe-sent when it may have been,
// gets its own handler once the old one is over.

// batchKey names a batch among those in hand.
type batchKey struct {
	sendID string
	seq    int
}

func keyOf(b store.ClaimedBatch) batchKey { return batchKey{b.SendID, b.Seq} }

// handling is what the dispatcher knows about a batch in hand beyond its
// claim.
type handling struct {
	lost bool                // a renewal found the lease gone to another owner
	next *store.ClaimedBatch // a newer claim of the batch by this dispatcher
}

// take puts a claimed batch in hand and reports whether it needs a handler;
// a batch already in hand keeps its handler, which hands the newer claim
// on when it is done.
func (d *Dispatcher) take(b store.ClaimedBatch) bool {
	d.handMu.Lock()
	defer d.handMu.Unlock()
	if h, ok := d.inHand[keyOf(b)]; ok {
		h.next = &b
		return false
	}
	d.inHand[keyOf(b)] = &handling{}
	return true
}

// release takes a handled batch out of hand and returns a newer claim of
// it, if one came meanwhile, for a handler of its own.
func (d *Dispatcher) release(b store.ClaimedBatch) (store.ClaimedBatch, bool) {
	d.handMu.Lock()
	defer d.handMu.Unlock()
	h := d.inHand[keyOf(b)]
	delete(d.inHand, keyOf(b))
	if h == nil || h.next == nil {
		return store.ClaimedBatch{}, false
	}
	d.inHand[keyOf(b)] = &handling{}
	return *h.next, true
}

// stale reports whether b's claim was lost or superseded: its handler must
// not send it.
func (d *Dispatcher) stale(b store.ClaimedBatch) bool {
	d.handMu.Lock()
	defer d.handMu.Unlock()
	h := d.inHand[keyOf(b)]
	return h == nil || h.lost || h.next != nil
}

// keepLease renews b's lease every LeaseRenewal until the returned stop is
// called. A renewal the store refuses because another owner holds the lease
// makes the claim stale; one that fails otherwise is tried again at the
// next tick, and the renewal just before sending decides.
func (d *Dispatcher) keepLease(ctx context.Context, log *slog.Logger, b store.ClaimedBatch) (stop func()) {
	if d.opts.LeaseRenewal < 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(d.opts.LeaseRenewal)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := d.opts.Store.ExtendLease(ctx, d.opts.Owner, b.SendID, b.Seq, d.opts.Now().Add(d.opts.Lease))
			switch {
			case errors.Is(err, store.ErrLeaseLost):
				d.handMu.Lock()
				if h := d.inHand[keyOf(b)]; h != nil {
					h.lost = true
				}
				d.handMu.Unlock()
				return
			case err != nil && ctx.Err() == nil:
				log.Warn("renewing a batch's lease failed; trying again", slog.Any("error", err))
			}
		}
	}()
	return func() { cancel(); <-done }
}
