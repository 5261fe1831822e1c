package dispatch

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/sqlite"
)

// TestClaimsOfABatchInHand walks the bookkeeping that keeps a stale claim
// from sending: a batch claimed again while in hand gets no second handler,
// its first claim turns stale, and the newer claim is handed on.
func TestClaimsOfABatchInHand(t *testing.T) {
	d := New(Options{})
	first := store.ClaimedBatch{Batch: store.Batch{SendID: "s", Seq: 1, Attempts: 1}}
	newer := store.ClaimedBatch{Batch: store.Batch{SendID: "s", Seq: 1, Attempts: 2}, MaybeSent: true}
	other := store.ClaimedBatch{Batch: store.Batch{SendID: "s", Seq: 2, Attempts: 1}}

	steps := []struct {
		name string
		do   func() bool
		want bool
	}{
		{"first claim needs a handler", func() bool { return d.take(first) }, true},
		{"first claim is fresh", func() bool { return d.stale(first) }, false},
		{"another batch needs its own handler", func() bool { return d.take(other) }, true},
		{"a second claim gets no handler", func() bool { return d.take(newer) }, false},
		{"the first claim is now stale", func() bool { return d.stale(first) }, true},
		{"the other batch is not", func() bool { return d.stale(other) }, false},
		{"releasing the first claim hands on the newer one", func() bool {
			next, ok := d.release(first)
			return ok && next.Attempts == 2 && next.MaybeSent
		}, true},
		{"the newer claim is in hand and fresh", func() bool { return d.stale(newer) }, false},
		{"releasing it hands nothing on", func() bool { _, ok := d.release(newer); return ok }, false},
		{"a released batch is stale to any old handler", func() bool { return d.stale(newer) }, true},
		{"and needs a handler when claimed again", func() bool { return d.take(newer) }, true},
	}
	for _, st := range steps {
		if got := st.do(); got != st.want {
			t.Fatalf("%s: got %v, want %v", st.name, got, st.want)
		}
	}
}

// TestKeepLease renews a claimed batch's lease on a real store: nobody can
// take the batch over while it is renewed, anyone may once renewal stops,
// and a renewal that finds the lease gone makes the claim stale.
func TestKeepLease(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ibmail.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	if _, _, err := st.CreateSend(ctx, store.Send{ID: "s", SenderID: "sender", ConnectionID: "conn", CreateTime: now},
		[]store.Recipient{{Seq: 0, ProfileID: "p", Email: "p@example.com", State: store.RecipientPending, BatchSeq: 0, BulkID: "s-0"}},
		[]store.Batch{{Seq: 0, BulkID: "s-0", State: store.BatchPending, NextAttemptTime: now}}); err != nil {
		t.Fatal(err)
	}
	const lease = 600 * time.Millisecond
	d := New(Options{Store: st, Owner: "a", Lease: lease, LeaseRenewal: lease / 6})
	claim := func(owner string) []store.ClaimedBatch {
		t.Helper()
		cs, err := st.ClaimBatches(ctx, owner, time.Now(), lease, 1)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	mine := claim("a")
	if len(mine) != 1 || !d.take(mine[0]) {
		t.Fatalf("claimed %v, want the batch", mine)
	}
	stop := d.keepLease(ctx, d.opts.Logger, mine[0])
	time.Sleep(3 * lease)
	if cs := claim("b"); len(cs) != 0 {
		t.Fatalf("another owner claimed the batch after three leases of renewal: %v", cs)
	}
	stop()
	time.Sleep(2 * lease)
	if cs := claim("b"); len(cs) != 1 {
		t.Fatalf("another owner could not claim the batch after renewal stopped: %v", cs)
	}
	if d.stale(mine[0]) {
		t.Fatal("the claim is stale before any renewal found the lease gone")
	}
	stop = d.keepLease(ctx, d.opts.Logger, mine[0])
	defer stop()
	deadline := time.Now().Add(5 * time.Second)
	for !d.stale(mine[0]) {
		if time.Now().After(deadline) {
			t.Fatal("renewing a lease another owner holds did not make the claim stale")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
