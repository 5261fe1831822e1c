package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
)

// Replicas are Stores with pools of their own on one schema: what several
// processes of the service sharing a database look like to PostgreSQL.
func replicas(t *testing.T, n int) []*postgres.Store {
	t.Helper()
	dsn := freshSchema(t)
	out := make([]*postgres.Store, n)
	for i := range out {
		out[i] = open(t, dsn)
	}
	return out
}

// Infobip retries a webhook delivery, and the retry may land on another
// replica while the first is still ingesting: each report must be stored,
// and make its event, once, and each caller must count it right.
func TestReplicasIngestSameReports(t *testing.T) {
	t.Parallel()
	rs := replicas(t, 2)
	ctx := context.Background()
	const callersPerReplica, n, rounds = 4, 50, 5
	for round := range rounds {
		reports := body(fmt.Sprint("r", round), n)
		type result struct {
			res store.IngestResult
			err error
		}
		results := make([]result, 0, 2*callersPerReplica)
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		for _, s := range rs {
			for range callersPerReplica {
				wg.Go(func() {
					<-start
					res, err := s.IngestReports(ctx, reports, nil)
					mu.Lock()
					results = append(results, result{res, err})
					mu.Unlock()
				})
			}
		}
		close(start)
		wg.Wait()
		storedBy := make([]int, n)
		var accepted, duplicates, events int
		for _, r := range results {
			if r.err != nil {
				t.Fatalf("round %d: IngestReports: %v", round, r.err)
			}
			accepted += r.res.Accepted
			duplicates += r.res.Duplicates
			events += r.res.Events
			for i, ok := range r.res.Stored {
				if ok {
					storedBy[i]++
				}
			}
		}
		callers := len(results)
		if accepted != n || events != n || duplicates != n*(callers-1) {
			t.Errorf("round %d: summed accepted %d, events %d, duplicates %d; want %d, %d, %d",
				round, accepted, events, duplicates, n, n, n*(callers-1))
		}
		for i, k := range storedBy {
			if k != 1 {
				t.Errorf("round %d: report %d stored by %d callers, want 1", round, i, k)
			}
		}
		evs, err := rs[1].ListEvents(ctx, store.EventQuery{ProfileID: "p-r" + fmt.Sprint(round), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != n {
			t.Errorf("round %d: events stored = %d, want %d", round, len(evs), n)
		}
	}
}

// Overlapping bodies in different orders make two transactions wait on each
// other's report keys: PostgreSQL breaks the deadlock by aborting one, which
// the engine runs again. Every report must end up stored once all the same.
func TestReplicasIngestOverlappingOrders(t *testing.T) {
	t.Parallel()
	rs := replicas(t, 2)
	ctx := context.Background()
	const n = 40
	for round := range 5 {
		forward := body(fmt.Sprint("o", round), n)
		backward := make([]store.Report, n)
		for i := range forward {
			backward[n-1-i] = forward[i]
		}
		var wg sync.WaitGroup
		results := make([]store.IngestResult, 4)
		errs := make([]error, 4)
		for i := range 4 {
			reports := forward
			if i%2 == 1 {
				reports = backward
			}
			wg.Go(func() { results[i], errs[i] = rs[i%2].IngestReports(ctx, reports, nil) })
		}
		wg.Wait()
		accepted := 0
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, caller %d: %v", round, i, err)
			}
			accepted += results[i].Accepted
		}
		if accepted != n {
			t.Errorf("round %d: accepted %d in all, want %d", round, accepted, n)
		}
	}
}

// Dispatchers on two replicas race for the batches of several sends: each
// batch goes to one of them, and completing them all makes every send done,
// although batches of one send are completed at once on both replicas.
func TestReplicasClaim(t *testing.T) {
	t.Parallel()
	rs := replicas(t, 2)
	ctx := context.Background()
	const sends, perSend = 4, 12
	for i := range sends {
		sn, recipients, batches := smallSend(fmt.Sprint("s", i), perSend*3, 3)
		if _, _, err := rs[i%2].CreateSend(ctx, sn, recipients, batches); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu      sync.Mutex
		claimed = map[string][]string{}
		wg      sync.WaitGroup
	)
	const dispatchersPerReplica = 3
	errs := make(chan error, 2*dispatchersPerReplica)
	for r, s := range rs {
		for d := range dispatchersPerReplica {
			owner := fmt.Sprintf("replica-%d/dispatcher-%d", r, d)
			wg.Go(func() {
				for {
					cs, err := s.ClaimBatches(ctx, owner, time.Now(), time.Hour, 2)
					if err != nil {
						errs <- err
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
						out := make([]store.RecipientOutcome, len(c.Recipients))
						for i, rc := range c.Recipients {
							out[i] = store.RecipientOutcome{Seq: rc.Seq, State: store.RecipientAccepted, MessageID: key + fmt.Sprint("-", rc.Seq)}
						}
						if err := s.CompleteBatch(ctx, owner, c.SendID, c.Seq, out); err != nil {
							errs <- fmt.Errorf("CompleteBatch(%s): %w", key, err)
							return
						}
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimed) != sends*perSend {
		t.Errorf("claimed %d batches, want %d", len(claimed), sends*perSend)
	}
	for key, owners := range claimed {
		if len(owners) != 1 {
			t.Errorf("batch %s claimed by %q, want one owner", key, owners)
		}
	}
	for i := range sends {
		sn, err := rs[0].GetSend(ctx, fmt.Sprint("s", i))
		if err != nil {
			t.Fatal(err)
		}
		if sn.DoneTime.IsZero() || sn.Counts[store.RecipientAccepted] != perSend*3 {
			t.Errorf("send %s: done %v, counts %v; want done, %d accepted", sn.ID, sn.DoneTime, sn.Counts, perSend*3)
		}
	}
}

// The last two batches of a send completed at the same instant on two
// replicas: whichever commits second must see the first's recipients and
// mark the send done.
func TestReplicasCompleteLastBatchesTogether(t *testing.T) {
	t.Parallel()
	rs := replicas(t, 2)
	ctx := context.Background()
	for round := range 10 {
		id := fmt.Sprint("pair-", round)
		sn, recipients, batches := smallSend(id, 4, 2)
		if _, _, err := rs[0].CreateSend(ctx, sn, recipients, batches); err != nil {
			t.Fatal(err)
		}
		cs, err := rs[0].ClaimBatches(ctx, "d", time.Now(), time.Hour, 10)
		if err != nil || len(cs) != 2 {
			t.Fatalf("ClaimBatches = %d batches, %v; want 2", len(cs), err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, c := range cs {
			wg.Go(func() {
				out := make([]store.RecipientOutcome, len(c.Recipients))
				for j, rc := range c.Recipients {
					out[j] = store.RecipientOutcome{Seq: rc.Seq, State: store.RecipientAccepted}
				}
				<-start
				errs[i] = rs[i].CompleteBatch(ctx, "d", c.SendID, c.Seq, out)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := rs[1].GetSend(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.DoneTime.IsZero() {
			t.Fatalf("round %d: send not done after both of its batches completed", round)
		}
	}
}

// A dispatcher whose lease expired loses the batch to one on another
// replica, which is told it may have been sent; the first can no longer
// complete it.
func TestReplicasLeaseTakeover(t *testing.T) {
	t.Parallel()
	rs := replicas(t, 2)
	ctx := context.Background()
	sn, recipients, batches := smallSend("s", 2, 2)
	if _, _, err := rs[0].CreateSend(ctx, sn, recipients, batches); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if cs, err := rs[0].ClaimBatches(ctx, "a", now, time.Minute, 1); err != nil || len(cs) != 1 || cs[0].MaybeSent {
		t.Fatalf("first claim = %+v, %v", cs, err)
	}
	cs, err := rs[1].ClaimBatches(ctx, "b", now.Add(2*time.Minute), time.Minute, 1)
	if err != nil || len(cs) != 1 || !cs[0].MaybeSent {
		t.Fatalf("claim after expiry = %+v, %v; want the batch, maybe sent", cs, err)
	}
	out := []store.RecipientOutcome{{Seq: 0, State: store.RecipientAccepted}, {Seq: 1, State: store.RecipientAccepted}}
	if err := rs[0].CompleteBatch(ctx, "a", "s", 0, out); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("CompleteBatch by the expired owner: err = %v, want ErrLeaseLost", err)
	}
	if err := rs[1].CompleteBatch(ctx, "b", "s", 0, out); err != nil {
		t.Errorf("CompleteBatch by the new owner: %v", err)
	}
}

// A client retrying CreateSend with one idempotency key may reach two
// replicas at once: one send is created, and both get it.
func TestReplicasIdempotency(t *testing.T) {
	t.Parallel()
	rs := replicas(t, 2)
	ctx := context.Background()
	for round := range 5 {
		key := fmt.Sprint("key-", round)
		const callers = 6
		var wg sync.WaitGroup
		ids := make([]string, callers)
		created := make([]bool, callers)
		errs := make([]error, callers)
		for i := range callers {
			wg.Go(func() {
				sn, recipients, batches := smallSend(fmt.Sprintf("%s-attempt-%d", key, i), 200, 50)
				sn.IdempotencyKey = key
				var got store.Send
				got, created[i], errs[i] = rs[i%2].CreateSend(ctx, sn, recipients, batches)
				ids[i] = got.ID
			})
		}
		wg.Wait()
		winners := 0
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if created[i] {
				winners++
			}
			if ids[i] != ids[0] {
				t.Errorf("round %d: callers got sends %q and %q", round, ids[0], ids[i])
			}
		}
		if winners != 1 {
			t.Errorf("round %d: %d callers created a send, want 1", round, winners)
		}
	}
	sends, err := rs[0].ListSends(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(sends) != 5 {
		t.Errorf("sends stored = %d, want 5", len(sends))
	}
}

// A suppression added on one replica is seen by the next send's check on
// another, and two replicas suppressing one address at once keep one cause.
func TestReplicasSuppress(t *testing.T) {
	t.Parallel()
	rs := replicas(t, 2)
	ctx := context.Background()
	mk := func(msg string) []store.Report {
		r := body(msg, 1)
		r[0].Email, r[0].Suppress, r[0].Rule = "bounced@example.com", true, "rule-"+msg
		return r
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { _, errs[i] = rs[i].IngestReports(ctx, mk(fmt.Sprint("cause", i)), nil) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range rs {
		got, err := s.SuppressedAmong(ctx, []string{"bounced@example.com", "clean@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || (got["bounced@example.com"].Reason != "rule-cause0" && got["bounced@example.com"].Reason != "rule-cause1") {
			t.Errorf("replica %d: SuppressedAmong = %+v, want bounced@example.com with one of the two causes", i, got)
		}
	}
}

// smallSend makes send id of n pending recipients, perBatch to a batch,
// due now.
func smallSend(id string, n, perBatch int) (store.Send, []store.Recipient, []store.Batch) {
	sn := store.Send{ID: id, SenderID: "sender", ConnectionID: "conn", Subject: "s", CreateTime: time.Now()}
	recipients := make([]store.Recipient, n)
	var batches []store.Batch
	for i := range recipients {
		b := i / perBatch
		if i%perBatch == 0 {
			batches = append(batches, store.Batch{Seq: b, BulkID: fmt.Sprintf("%s-bulk-%d", id, b), State: store.BatchPending, NextAttemptTime: time.Now().Add(-time.Second)})
		}
		recipients[i] = store.Recipient{
			Seq: i, ProfileID: fmt.Sprint("p", i), Email: fmt.Sprintf("r%d@%s.example.com", i, id),
			State: store.RecipientPending, BatchSeq: b, BulkID: batches[b].BulkID,
		}
	}
	return sn, recipients, batches
}
