package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// testBacklog walks a store through the states an operator's gauges must
// tell apart: batches waiting, due, leased, leased past expiry, ambiguous
// and done; events in the outbox, in the log, and published.
func testBacklog(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	backlog := func(now time.Time) store.Backlog {
		t.Helper()
		b, err := s.Backlog(ctx, now)
		if err != nil {
			t.Fatalf("Backlog: %v", err)
		}
		return b
	}
	batches := func(pending, inFlight, ambiguous int) map[store.BatchState]int {
		return map[store.BatchState]int{store.BatchPending: pending, store.BatchInFlight: inFlight, store.BatchAmbiguous: ambiguous}
	}
	check := func(what string, got store.Backlog, want store.Backlog) {
		t.Helper()
		if !reflect.DeepEqual(got.Batches, want.Batches) || got.DueBatches != want.DueBatches ||
			got.OutboxEvents != want.OutboxEvents || got.LastPosition != want.LastPosition ||
			!reflect.DeepEqual(got.Published, want.Published) {
			t.Errorf("%s: Backlog = %+v\nwant %+v", what, got, want)
		}
		if !got.OldestDue.Equal(want.OldestDue) {
			t.Errorf("%s: OldestDue = %v, want %v", what, got.OldestDue, want.OldestDue)
		}
	}

	check("empty store", backlog(at(0)), store.Backlog{Batches: batches(0, 0, 0), Published: map[string]int64{}})

	// Four batches, due at at(0); before then none is due.
	createSend(t, s, newSend("s", 8, 2))
	check("before the batches are due", backlog(at(-time.Second)),
		store.Backlog{Batches: batches(4, 0, 0), Published: map[string]int64{}})
	check("once they are due", backlog(at(time.Minute)),
		store.Backlog{Batches: batches(4, 0, 0), DueBatches: 4, OldestDue: at(0), Published: map[string]int64{}})

	// Claim three under a one-minute lease: one completes, one stays
	// leased, one is rescheduled as ambiguous. The fourth is left due.
	claimed := claim(t, s, "d1", at(time.Second), time.Minute, 3)
	if len(claimed) != 3 {
		t.Fatalf("claimed %d batches, want 3", len(claimed))
	}
	// claimed[1] stays under its lease.
	done, ambiguous := claimed[0], claimed[2]
	completeBatch(t, s, "d1", done.SendID, done.Seq, accepted(done.SendID, seqs(done.Recipients)))
	if err := s.RescheduleBatch(ctx, "d1", ambiguous.SendID, ambiguous.Seq, store.BatchAmbiguous, at(10*time.Minute), "read timeout"); err != nil {
		t.Fatalf("RescheduleBatch: %v", err)
	}
	// The completed batch's two accepted recipients have their
	// message.send events in the outbox.
	check("with the lease running", backlog(at(2*time.Second)),
		store.Backlog{Batches: batches(1, 1, 1), DueBatches: 1, OldestDue: at(0), OutboxEvents: 2, Published: map[string]int64{}})
	// Past the lease but before the ambiguous batch's next attempt, the
	// leased batch is due since its lease ran out.
	check("with the lease run out", backlog(at(5*time.Minute)),
		store.Backlog{Batches: batches(1, 1, 1), DueBatches: 2, OldestDue: at(0), OutboxEvents: 2, Published: map[string]int64{}})
	check("with everything due", backlog(at(time.Hour)),
		store.Backlog{Batches: batches(1, 1, 1), DueBatches: 3, OldestDue: at(0), OutboxEvents: 2, Published: map[string]int64{}})

	// Events: the two message.send events of the completed batch and the
	// three ingested sit in the outbox until sequenced; a publisher that
	// published one lags four behind.
	ingest(t, s, []store.Report{rep("a", store.OutcomeEvent), rep("b", store.OutcomeEvent), rep("c", store.OutcomeNoError), rep("d", store.OutcomeEvent)}, nil)
	b := backlog(at(time.Hour))
	if b.OutboxEvents != 5 || b.LastPosition != 0 {
		t.Errorf("after ingest: outbox %d, last position %d; want 5, 0", b.OutboxEvents, b.LastPosition)
	}
	acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
	sequenceAll(t, s, testSequencer, 10)
	acquireLease(t, s, "pub-1", "p", at(0))
	if err := s.MarkPublished(ctx, "pub-1", "p", 1); err != nil {
		t.Fatalf("MarkPublished: %v", err)
	}
	b = backlog(at(time.Hour))
	if b.OutboxEvents != 0 || b.LastPosition != 5 || !reflect.DeepEqual(b.Published, map[string]int64{"pub-1": 1}) {
		t.Errorf("after sequencing and publishing one: outbox %d, last position %d, published %v; want 0, 5, pub-1 at 1",
			b.OutboxEvents, b.LastPosition, b.Published)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backlog(ctx, at(0)); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Backlog after Close: err = %v, want ErrUnavailable", err)
	}
}
