package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

func testClaimBatches(t *testing.T, open opener) {
	s := open(t)
	f := newSend("s", 10, 4) // batch 0 = 0-3, batch 1 = 5-8
	f.batches[1].NextAttemptTime = at(time.Hour)
	createSend(t, s, f)
	// An ambiguous batch (left so by a timeout) is due like a pending one,
	// but may have reached Infobip.
	g := newSend("t", 2, 2)
	g.batches[0].State, g.batches[0].Attempts, g.batches[0].LastError = store.BatchAmbiguous, 1, "timeout"
	createSend(t, s, g)

	now := at(time.Minute)
	cs := claim(t, s, "d1", now, time.Minute, 10)
	if got, want := claimedKeys(cs), []string{"s/0", "t/0"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("claimed %q, want %q (s/1 is not due)", got, want)
	}
	c := cs[0]
	if c.State != store.BatchInFlight || c.Attempts != 1 || c.BulkID != bulkID("s", 0) || c.MaybeSent {
		t.Errorf("claimed s/0 = state %d, attempts %d, bulk %q, maybe sent %v; want in flight, 1, %q, false",
			c.State, c.Attempts, c.BulkID, c.MaybeSent, bulkID("s", 0))
	}
	sameTime(t, "NextAttemptTime", c.NextAttemptTime, at(0))
	sameSend(t, c.Send, f.send)
	sameRecipients(t, c.Recipients, f.storedRecipients()[0:4])
	if c := cs[1]; !c.MaybeSent || c.Attempts != 2 || c.LastError != "timeout" {
		t.Errorf("claimed t/0 = maybe sent %v, attempts %d, last error %q; want true, 2, timeout", c.MaybeSent, c.Attempts, c.LastError)
	}

	if cs := claim(t, s, "d2", now.Add(30*time.Second), time.Minute, 10); len(cs) != 0 {
		t.Errorf("claimed %q under a live lease", claimedKeys(cs))
	}
	if cs := claim(t, s, "d2", now, time.Minute, 0); len(cs) != 0 {
		t.Errorf("limit 0 claimed %q", claimedKeys(cs))
	}
	// An hour on, s/1 is due and the leases of s/0 and t/0 have expired:
	// their dispatcher is taken to have died, maybe after sending.
	later := at(time.Hour)
	cs = claim(t, s, "d2", later, time.Minute, 2)
	cs = append(cs, claim(t, s, "d2", later, time.Minute, 2)...)
	if got, want := len(cs), 3; got != want {
		t.Fatalf("claimed %q in two claims of 2, want 3 batches", claimedKeys(cs))
	}
	for _, c := range cs {
		key := claimedKeys([]store.ClaimedBatch{c})[0]
		wantMaybe, wantAttempts := true, 2
		switch key {
		case "s/1":
			wantMaybe, wantAttempts = false, 1
		case "t/0":
			wantAttempts = 3
		}
		if c.MaybeSent != wantMaybe || c.Attempts != wantAttempts {
			t.Errorf("%s: maybe sent %v, attempts %d; want %v, %d", key, c.MaybeSent, c.Attempts, wantMaybe, wantAttempts)
		}
	}
	if cs := claim(t, s, "d3", later, time.Minute, 10); len(cs) != 0 {
		t.Errorf("claimed %q after everything was claimed", claimedKeys(cs))
	}
}

// Dispatchers race for batches: each is claimed once, and completing them
// all makes every send done.
func testClaimConcurrent(t *testing.T, open opener) {
	s := open(t)
	const sends, claimers = 3, 6
	want := map[string]bool{}
	for i := range sends {
		f := newSend(fmt.Sprint("s", i), 25, 2) // 20 pending: 10 batches
		createSend(t, s, f)
		for _, b := range f.batches {
			want[fmt.Sprintf("s%d/%d", i, b.Seq)] = true
		}
	}
	var (
		mu      sync.Mutex
		claimed = map[string][]string{} // batch -> owners
		wg      sync.WaitGroup
		errs    = make([]error, claimers)
	)
	for i := range claimers {
		owner := fmt.Sprint("dispatcher-", i)
		wg.Go(func() {
			for {
				cs, err := s.ClaimBatches(context.Background(), owner, at(0), time.Hour, 4)
				if err != nil {
					errs[i] = err
					return
				}
				if len(cs) == 0 {
					return
				}
				for _, c := range cs {
					key := fmt.Sprintf("%s/%d", c.SendID, c.Seq)
					mu.Lock()
					claimed[key] = append(claimed[key], owner)
					mu.Unlock()
					if err := s.CompleteBatch(context.Background(), owner, c.SendID, c.Seq, accepted(c.SendID, seqs(c.Recipients))); err != nil {
						errs[i] = fmt.Errorf("CompleteBatch(%s): %w", key, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("claimer %d: %v", i, err)
		}
	}
	for key := range want {
		if n := len(claimed[key]); n != 1 {
			t.Errorf("batch %s claimed %d times (%q), want once", key, n, claimed[key])
		}
	}
	if len(claimed) != len(want) {
		t.Errorf("claimed %d batches, want %d", len(claimed), len(want))
	}
	for i := range sends {
		sn := getSend(t, s, fmt.Sprint("s", i))
		if sn.DoneTime.IsZero() {
			t.Errorf("send %s not done after all its batches completed", sn.ID)
		}
		sameCounts(t, sn.ID, sn.Counts, map[store.RecipientState]int{store.RecipientAccepted: 20, store.RecipientSuppressed: 5})
	}
}

func testCompleteBatch(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	f := newSend("s", 10, 4) // batch 0 = 0-3, batch 1 = 5-8, 4 and 9 suppressed
	createSend(t, s, f)
	claim(t, s, "d", at(0), time.Minute, 10)

	clock := clockAround(func() {
		completeBatch(t, s, "d", "s", 0, []store.RecipientOutcome{
			{Seq: 0, State: store.RecipientAccepted, MessageID: "m0"},
			{Seq: 1, State: store.RecipientAccepted, MessageID: "m1"},
			{Seq: 2, State: store.RecipientRejected, Reason: "invalid address"},
			{Seq: 3, State: store.RecipientFailed, Reason: "domain has no MX"},
		})
	})
	sn := getSend(t, s, "s")
	sameCounts(t, "after batch 0", sn.Counts, map[store.RecipientState]int{
		store.RecipientAccepted: 2, store.RecipientRejected: 1, store.RecipientFailed: 1,
		store.RecipientPending: 4, store.RecipientSuppressed: 2,
	})
	if !sn.DoneTime.IsZero() {
		t.Errorf("DoneTime = %v with batch 1 pending, want zero", sn.DoneTime)
	}
	want := f.storedRecipients()[0:4]
	want[0].State, want[0].MessageID = store.RecipientAccepted, "m0"
	want[1].State, want[1].MessageID = store.RecipientAccepted, "m1"
	want[2].State, want[2].Reason = store.RecipientRejected, "invalid address"
	want[3].State, want[3].Reason = store.RecipientFailed, "domain has no MX"
	got := listRecipients(t, s, store.RecipientQuery{SendID: "s", AfterSeq: -1, Limit: 4})
	if len(got) == 4 {
		// The accepted ones have their message.send as last event.
		want[0], want[1] = messageSent(t, clock, want[0], got[0]), messageSent(t, clock, want[1], got[1])
	}
	sameRecipients(t, got, want)
	if err := s.CompleteBatch(ctx, "d", "s", 0, accepted("s", []int{0})); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("completing a done batch: err = %v, want ErrLeaseLost", err)
	}

	before := time.Now()
	completeBatch(t, s, "d", "s", 1, accepted("s", f.inBatch(1)))
	after := time.Now()
	sn = getSend(t, s, "s")
	sameCounts(t, "after batch 1", sn.Counts, map[store.RecipientState]int{
		store.RecipientAccepted: 6, store.RecipientRejected: 1, store.RecipientFailed: 1, store.RecipientSuppressed: 2,
	})
	// The store's clock sets DoneTime; allow for its microseconds.
	if sn.DoneTime.Before(before.Truncate(time.Millisecond)) || sn.DoneTime.After(after.Add(time.Millisecond)) {
		t.Errorf("DoneTime = %v, want between %v and %v", sn.DoneTime, before, after)
	}
	if sn.DoneTime.Location() != time.UTC {
		t.Errorf("DoneTime location = %v, want UTC", sn.DoneTime.Location())
	}
	if cs := claim(t, s, "d2", at(24*time.Hour), time.Minute, 10); len(cs) != 0 {
		t.Errorf("done batches claimed again: %q", claimedKeys(cs))
	}
}

// A batch of 1000 (Infobip's most per request) takes all its outcomes in
// one call: a recipient given two outcomes keeps the last, and one outcome
// about a recipient outside the batch, given last, still undoes the whole
// call.
func testCompleteBatchWhole(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	f := newSend("s", 1250, 1000) // batch 0: the first 1000 not suppressed
	createSend(t, s, f)
	claim(t, s, "d", at(0), time.Minute, 10)
	in := f.inBatch(0)
	if len(in) != 1000 {
		t.Fatalf("batch 0 holds %d recipients, want 1000", len(in))
	}
	outcomes := accepted("s", in)
	outcomes[0] = store.RecipientOutcome{Seq: in[0], State: store.RecipientRejected, Reason: "first answer"}
	stray := append(slices.Clone(outcomes), store.RecipientOutcome{Seq: 4, State: store.RecipientAccepted, MessageID: "stray"})
	if err := s.CompleteBatch(ctx, "d", "s", 0, stray); err == nil {
		t.Fatal("CompleteBatch with an outcome about a suppressed recipient: no error")
	}
	if got := len(listRecipients(t, s, store.RecipientQuery{SendID: "s", State: store.RecipientPending, AfterSeq: -1, Limit: 2000})); got != 1000 {
		t.Fatalf("pending recipients after the refused call = %d, want 1000", got)
	}
	outcomes = append(outcomes, store.RecipientOutcome{Seq: in[0], State: store.RecipientAccepted, MessageID: "second answer"})
	completeBatch(t, s, "d", "s", 0, outcomes)
	sameCounts(t, "after batch 0", getSend(t, s, "s").Counts, map[store.RecipientState]int{
		store.RecipientAccepted: 1000, store.RecipientSuppressed: 250,
	})
	got := listRecipients(t, s, store.RecipientQuery{SendID: "s", AfterSeq: -1, Limit: 1})
	if len(got) != 1 || got[0].State != store.RecipientAccepted || got[0].MessageID != "second answer" || got[0].Reason != "" {
		t.Errorf("recipient 0 = %+v, want accepted with the second answer's message id", got)
	}
	last := listRecipients(t, s, store.RecipientQuery{SendID: "s", AfterSeq: in[999] - 1, Limit: 1})
	if len(last) != 1 || last[0].MessageID != fmt.Sprintf("s-m%d", in[999]) {
		t.Errorf("the batch's last recipient = %+v, want its message id", last)
	}
}

// Outcomes that would leave a batch done with recipients not final are
// refused, and change nothing.
func testCompleteBatchInvalid(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	f := newSend("s", 10, 4) // batch 0 = 0-3, batch 1 = 5-8
	createSend(t, s, f)
	claim(t, s, "d", at(0), time.Minute, 10)
	tests := []struct {
		name     string
		outcomes []store.RecipientOutcome
	}{
		{"a recipient without outcome", accepted("s", []int{0, 1, 2})},
		{"a pending outcome", append(accepted("s", []int{0, 1, 2}), store.RecipientOutcome{Seq: 3, State: store.RecipientPending})},
		{"a recipient of another batch", accepted("s", []int{0, 1, 2, 3, 5})},
		{"an unknown recipient", accepted("s", []int{0, 1, 2, 3, 42})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.CompleteBatch(ctx, "d", "s", 0, tt.outcomes); err == nil {
				t.Fatal("CompleteBatch: no error")
			}
			if got := seqs(listRecipients(t, s, store.RecipientQuery{SendID: "s", State: store.RecipientPending, AfterSeq: -1})); len(got) != 8 {
				t.Errorf("pending recipients after a refused CompleteBatch = %v, want all 8", got)
			}
		})
	}
	// The batch is still in flight under d's lease.
	completeBatch(t, s, "d", "s", 0, accepted("s", f.inBatch(0)))
}

// A dispatcher that stalls past its lease loses the batch to another, which
// must be told it may have been sent; the stalled one can no longer act.
func testLeaseExpiry(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	f := newSend("s", 4, 4) // one batch of 4
	createSend(t, s, f)
	if cs := claim(t, s, "old", at(0), time.Minute, 10); len(cs) != 1 || cs[0].MaybeSent {
		t.Fatalf("first claim = %+v, want s/0 not maybe sent", cs)
	}
	if cs := claim(t, s, "new", at(30*time.Second), time.Minute, 10); len(cs) != 0 {
		t.Fatalf("claimed %q under a live lease", claimedKeys(cs))
	}
	cs := claim(t, s, "new", at(2*time.Minute), time.Minute, 10)
	if len(cs) != 1 {
		t.Fatalf("claim after expiry = %q, want s/0", claimedKeys(cs))
	}
	if c := cs[0]; !c.MaybeSent || c.Attempts != 2 || c.State != store.BatchInFlight {
		t.Errorf("reclaimed = maybe sent %v, attempts %d, state %d; want true, 2, in flight", c.MaybeSent, c.Attempts, c.State)
	}
	if got := seqs(cs[0].Recipients); !reflect.DeepEqual(got, []int{0, 1, 2, 3}) {
		t.Errorf("reclaimed recipients = %v, want [0 1 2 3]", got)
	}

	if err := s.CompleteBatch(ctx, "old", "s", 0, accepted("s", []int{0, 1, 2, 3})); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("CompleteBatch by the old owner: err = %v, want ErrLeaseLost", err)
	}
	if err := s.RescheduleBatch(ctx, "old", "s", 0, store.BatchPending, at(0), "x"); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("RescheduleBatch by the old owner: err = %v, want ErrLeaseLost", err)
	}
	if err := s.ExtendLease(ctx, "old", "s", 0, at(time.Hour)); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("ExtendLease by the old owner: err = %v, want ErrLeaseLost", err)
	}
	if err := s.CompleteBatch(ctx, "new", "s", 1, nil); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("CompleteBatch of a batch that does not exist: err = %v, want ErrLeaseLost", err)
	}
	sn := getSend(t, s, "s")
	sameCounts(t, "after the old owner's attempts", sn.Counts, map[store.RecipientState]int{store.RecipientPending: 4})
	if !sn.DoneTime.IsZero() {
		t.Error("the old owner's CompleteBatch made the send done")
	}
	// The old owner's failed extension did not keep the new lease alive.
	if cs := claim(t, s, "third", at(4*time.Minute), time.Minute, 10); len(cs) != 1 {
		t.Errorf("claim after the new lease expired = %q, want s/0", claimedKeys(cs))
	}
	if err := s.CompleteBatch(ctx, "new", "s", 0, accepted("s", []int{0, 1, 2, 3})); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("CompleteBatch by the second owner after a third claimed: err = %v, want ErrLeaseLost", err)
	}
	completeBatch(t, s, "third", "s", 0, accepted("s", []int{0, 1, 2, 3}))
	if sn := getSend(t, s, "s"); sn.DoneTime.IsZero() || sn.Counts[store.RecipientAccepted] != 4 {
		t.Errorf("after the third owner completed: done %v, counts %v", sn.DoneTime, sn.Counts)
	}
}

func testRescheduleBatch(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	createSend(t, s, newSend("s", 2, 2))
	claim(t, s, "d1", at(0), time.Minute, 1)
	if err := s.RescheduleBatch(ctx, "d1", "s", 0, store.BatchPending, at(10*time.Minute), "429 Too Many Requests"); err != nil {
		t.Fatalf("RescheduleBatch: %v", err)
	}
	// The lease ended with the reschedule: the old owner holds nothing.
	if err := s.ExtendLease(ctx, "d1", "s", 0, at(time.Hour)); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("ExtendLease after reschedule: err = %v, want ErrLeaseLost", err)
	}
	if cs := claim(t, s, "d2", at(10*time.Minute-time.Microsecond), time.Minute, 1); len(cs) != 0 {
		t.Fatalf("claimed %q before its next attempt time", claimedKeys(cs))
	}
	cs := claim(t, s, "d2", at(10*time.Minute), time.Minute, 1)
	if len(cs) != 1 {
		t.Fatal("rescheduled batch not claimed at its next attempt time")
	}
	c := cs[0]
	if c.MaybeSent || c.Attempts != 2 || c.LastError != "429 Too Many Requests" {
		t.Errorf("claimed = maybe sent %v, attempts %d, last error %q; want false, 2, the 429", c.MaybeSent, c.Attempts, c.LastError)
	}
	sameTime(t, "NextAttemptTime", c.NextAttemptTime, at(10*time.Minute))

	if err := s.RescheduleBatch(ctx, "d1", "s", 0, store.BatchAmbiguous, at(0), "x"); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("RescheduleBatch by a former owner: err = %v, want ErrLeaseLost", err)
	}
	if err := s.RescheduleBatch(ctx, "d2", "s", 0, store.BatchDone, at(0), "x"); err == nil || errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("RescheduleBatch to done: err = %v, want a refusal", err)
	}
	if err := s.RescheduleBatch(ctx, "d2", "s", 0, store.BatchAmbiguous, at(20*time.Minute), "read timeout"); err != nil {
		t.Fatalf("RescheduleBatch ambiguous: %v", err)
	}
	cs = claim(t, s, "d3", at(20*time.Minute), time.Minute, 1)
	if len(cs) != 1 || !cs[0].MaybeSent || cs[0].LastError != "read timeout" || cs[0].Attempts != 3 {
		t.Errorf("claimed after ambiguous = %+v, want maybe sent, read timeout, 3 attempts", cs)
	}
}

func testExtendLease(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	createSend(t, s, newSend("s", 2, 2))
	claim(t, s, "d1", at(0), time.Minute, 1)
	if err := s.ExtendLease(ctx, "d1", "s", 0, at(10*time.Minute)); err != nil {
		t.Fatalf("ExtendLease: %v", err)
	}
	if err := s.ExtendLease(ctx, "d2", "s", 0, at(time.Hour)); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("ExtendLease by another: err = %v, want ErrLeaseLost", err)
	}
	if cs := claim(t, s, "d2", at(5*time.Minute), time.Minute, 1); len(cs) != 0 {
		t.Fatalf("claimed %q under an extended lease", claimedKeys(cs))
	}
	cs := claim(t, s, "d2", at(11*time.Minute), time.Minute, 1)
	if len(cs) != 1 || !cs[0].MaybeSent {
		t.Fatalf("claim after the extended lease = %+v, want s/0 maybe sent", cs)
	}
	if err := s.ExtendLease(ctx, "d1", "s", 0, at(time.Hour)); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("ExtendLease by the previous owner: err = %v, want ErrLeaseLost", err)
	}
}

func testReleaseLeases(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	createSend(t, s, newSend("s", 8, 4)) // two batches of 4
	createSend(t, s, newSend("t", 4, 4))
	claim(t, s, "me", at(0), time.Hour, 2) // s/0 and s/1, or s/0 and t/0
	mine := claim(t, s, "other", at(0), time.Hour, 10)
	if len(mine) != 1 {
		t.Fatalf("the other dispatcher claimed %q, want the one batch left", claimedKeys(mine))
	}
	n, err := s.ReleaseLeases(ctx, "me", at(time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("ReleaseLeases = %d, %v; want 2 released", n, err)
	}
	if n, err := s.ReleaseLeases(ctx, "me", at(time.Minute)); err != nil || n != 0 {
		t.Errorf("second ReleaseLeases = %d, %v; want 0", n, err)
	}
	if cs := claim(t, s, "me", at(time.Minute-time.Microsecond), time.Hour, 10); len(cs) != 0 {
		t.Errorf("claimed %q before the release time", claimedKeys(cs))
	}
	cs := claim(t, s, "me", at(time.Minute), time.Hour, 10)
	if len(cs) != 2 {
		t.Fatalf("claim after release = %q, want the two released batches (not the other's)", claimedKeys(cs))
	}
	for _, c := range cs {
		if !c.MaybeSent {
			t.Errorf("released batch %q is not maybe-sent: it must be checked in Infobip's logs", claimedKeys([]store.ClaimedBatch{c}))
		}
	}
}
