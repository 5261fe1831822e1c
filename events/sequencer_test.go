package events

import (
	"context"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// A sequencer that died holding the lease is taken over once the lease runs
// out, and readers in this process hear of the new events.
func TestSequencerTakesOverDeadHolder(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	if held, err := st.AcquireLease(ctx, store.SequencerLease, "dead", time.Now(), ttl); err != nil || !held {
		t.Fatalf("AcquireLease(dead) = %v, %v", held, err)
	}
	ingestRound(t, st, 0, 10)

	seq := NewSequencer(SequencerOptions{Store: st, Owner: "live", Lease: ttl, Poll: 10 * time.Millisecond})
	changed := seq.Changed()
	runInBackground(t, seq.Run)
	eventually(t, 10*time.Second, "the live sequencer sequences the outbox", func() bool {
		last, err := st.LastEventPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return last == 10
	})
	// The signal follows the commit, so it may come a moment after the
	// events are visible.
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Error("Changed() not closed after the sequencer added events")
	}
}

// A sequencer that stops gives its lease back: another replica need not
// wait for it to run out.
func TestSequencerReleasesLeaseOnStop(t *testing.T) {
	st := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	seq := NewSequencer(SequencerOptions{Store: st, Owner: "first", Lease: time.Hour, Poll: 10 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- seq.Run(ctx) }()
	ingestRound(t, st, 0, 5)
	eventually(t, 10*time.Second, "the first sequencer sequences", func() bool {
		last, err := st.LastEventPosition(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return last == 5
	})
	if held, err := st.AcquireLease(context.Background(), store.SequencerLease, "second", time.Now(), time.Minute); err != nil || held {
		t.Fatalf("AcquireLease(second) while the first runs = %v, %v; want refused", held, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if held, err := st.AcquireLease(context.Background(), store.SequencerLease, "second", time.Now(), time.Minute); err != nil || !held {
		t.Errorf("AcquireLease(second) after the first stopped = %v, %v; want held", held, err)
	}
}
