package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// sendFixture is a send as the server would hand it to CreateSend.
type sendFixture struct {
	send       store.Send
	recipients []store.Recipient
	batches    []store.Batch
}

// newSend makes send id with n recipients: every fifth (seq 4, 9, ...) was
// suppressed before dispatch and goes in no batch; the others are pending,
// perBatch to a batch in request order. Batches are due at at(0). Every
// other recipient has placeholders.
func newSend(id string, n, perBatch int) sendFixture {
	f := sendFixture{send: store.Send{
		ID:           id,
		SenderID:     "sender-1",
		ConnectionID: "conn-1",
		CampaignID:   "campaign-" + id,
		Subject:      "Subject of " + id,
		Content:      []byte(`{"html":"<p>content of ` + id + `</p>"}`),
		CreateTime:   t0,
	}}
	pending := 0
	for i := range n {
		r := store.Recipient{
			Seq:       i,
			ProfileID: fmt.Sprintf("profile-%s-%d", id, i),
			Email:     fmt.Sprintf("r%05d@%s.example.com", i, id),
		}
		if i%2 == 0 {
			r.Placeholders = map[string]string{"name": fmt.Sprintf("Recipient %d", i), "id": id}
		}
		if i%5 == 4 {
			r.State, r.BatchSeq, r.Reason = store.RecipientSuppressed, -1, "suppressed: hard bounce"
		} else {
			r.State, r.BatchSeq = store.RecipientPending, pending/perBatch
			r.BulkID = bulkID(id, r.BatchSeq)
			if pending%perBatch == 0 {
				f.batches = append(f.batches, store.Batch{
					Seq: r.BatchSeq, BulkID: r.BulkID, State: store.BatchPending, NextAttemptTime: at(0),
				})
			}
			pending++
		}
		f.recipients = append(f.recipients, r)
	}
	return f
}

func bulkID(sendID string, seq int) string { return fmt.Sprintf("%s-bulk-%d", sendID, seq) }

// storedRecipients is what the store should return for the fixture's
// recipients: the same, with the send id filled in.
func (f sendFixture) storedRecipients() []store.Recipient {
	out := make([]store.Recipient, len(f.recipients))
	for i, r := range f.recipients {
		r.SendID = f.send.ID
		out[i] = r
	}
	return out
}

// inBatch returns the seqs of the fixture's recipients in batch b.
func (f sendFixture) inBatch(b int) []int {
	var out []int
	for _, r := range f.recipients {
		if r.BatchSeq == b {
			out = append(out, r.Seq)
		}
	}
	return out
}

func createSend(t *testing.T, s store.Store, f sendFixture) store.Send {
	t.Helper()
	stored, created, err := s.CreateSend(context.Background(), f.send, f.recipients, f.batches)
	if err != nil {
		t.Fatalf("CreateSend(%s): %v", f.send.ID, err)
	}
	if !created {
		t.Fatalf("CreateSend(%s): created = false, want true", f.send.ID)
	}
	return stored
}

func getSend(t *testing.T, s store.Store, id string) store.Send {
	t.Helper()
	sn, err := s.GetSend(context.Background(), id)
	if err != nil {
		t.Fatalf("GetSend(%s): %v", id, err)
	}
	return sn
}

func listRecipients(t *testing.T, s store.Store, q store.RecipientQuery) []store.Recipient {
	t.Helper()
	rs, err := s.ListRecipients(context.Background(), q)
	if err != nil {
		t.Fatalf("ListRecipients(%+v): %v", q, err)
	}
	return rs
}

func claim(t *testing.T, s store.Store, owner string, now time.Time, lease time.Duration, limit int) []store.ClaimedBatch {
	t.Helper()
	cs, err := s.ClaimBatches(context.Background(), owner, now, lease, limit)
	if err != nil {
		t.Fatalf("ClaimBatches(%s, %v): %v", owner, now, err)
	}
	return cs
}

// claimedKeys names claimed batches "send/seq", in the order returned.
func claimedKeys(cs []store.ClaimedBatch) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%s/%d", c.SendID, c.Seq)
	}
	return out
}

func seqs(rs []store.Recipient) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

// accepted gives each of seqs an accepted outcome with message id
// "<send>-m<seq>".
func accepted(sendID string, seqs []int) []store.RecipientOutcome {
	out := make([]store.RecipientOutcome, len(seqs))
	for i, q := range seqs {
		out[i] = store.RecipientOutcome{Seq: q, State: store.RecipientAccepted, MessageID: fmt.Sprintf("%s-m%d", sendID, q)}
	}
	return out
}

func completeBatch(t *testing.T, s store.Store, owner, sendID string, seq int, outcomes []store.RecipientOutcome) {
	t.Helper()
	if err := s.CompleteBatch(context.Background(), owner, sendID, seq, outcomes); err != nil {
		t.Fatalf("CompleteBatch(%s, %s/%d): %v", owner, sendID, seq, err)
	}
}

// storeClock is a window of the store's clock: the times an engine that
// stamps a write with time.Now() may give it when called within the
// window, microseconds and all.
type storeClock struct{ before, after time.Time }

// clockAround runs fn and returns the window it ran in.
func clockAround(fn func()) storeClock {
	before := time.Now()
	fn()
	return storeClock{before.Truncate(time.Millisecond), time.Now().Add(time.Millisecond)}
}

// holds requires got to be within the window, in UTC.
func (c storeClock) holds(t *testing.T, what string, got time.Time) {
	t.Helper()
	if got.Before(c.before) || got.After(c.after) {
		t.Errorf("%s = %v, want between %v and %v", what, got, c.before, c.after)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

// messageSent is want as CompleteBatch leaves a recipient it accepted
// that had no last event: its MessageSendEvent is the last event, at the
// store's clock within c, which is checked on got and then taken from it.
func messageSent(t *testing.T, c storeClock, want, got store.Recipient) store.Recipient {
	t.Helper()
	c.holds(t, fmt.Sprintf("recipient %s/%d LastEventTime", want.SendID, want.Seq), got.LastEventTime)
	want.LastEvent, want.LastEventTime = store.MessageSendEvent, got.LastEventTime
	return want
}

// sameRecipient compares every field, times as instants and no
// placeholders as nil.
func sameRecipient(t *testing.T, got, want store.Recipient) {
	t.Helper()
	if !got.LastEventTime.Equal(want.LastEventTime) {
		t.Errorf("recipient %s/%d LastEventTime = %v, want %v", want.SendID, want.Seq, got.LastEventTime, want.LastEventTime)
	}
	if !got.LastEventTime.IsZero() && got.LastEventTime.Location() != time.UTC {
		t.Errorf("recipient %s/%d LastEventTime location = %v, want UTC", want.SendID, want.Seq, got.LastEventTime.Location())
	}
	got.LastEventTime, want.LastEventTime = time.Time{}, time.Time{}
	if len(got.Placeholders) == 0 {
		got.Placeholders = nil
	}
	if len(want.Placeholders) == 0 {
		want.Placeholders = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("recipient %s/%d = %+v, want %+v", want.SendID, want.Seq, got, want)
	}
}

func sameRecipients(t *testing.T, got, want []store.Recipient) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("recipients = %v, want %v", seqs(got), seqs(want))
	}
	for i := range got {
		sameRecipient(t, got[i], want[i])
	}
}

// sameCounts compares counts by state, a missing state counting zero.
func sameCounts(t *testing.T, what string, got, want map[store.RecipientState]int) {
	t.Helper()
	states := []store.RecipientState{}
	for st := range got {
		states = append(states, st)
	}
	for st := range want {
		states = append(states, st)
	}
	slices.Sort(states)
	for _, st := range slices.Compact(states) {
		if got[st] != want[st] {
			t.Errorf("%s: Counts = %v, want %v", what, got, want)
			return
		}
	}
}

// sameSend compares a stored send with what was given, but the fields the
// store owns (counts, done time), which tests check themselves.
func sameSend(t *testing.T, got, want store.Send) {
	t.Helper()
	if got.ID != want.ID || got.SenderID != want.SenderID || got.ConnectionID != want.ConnectionID ||
		got.CampaignID != want.CampaignID || got.IdempotencyKey != want.IdempotencyKey || got.Subject != want.Subject ||
		got.FromDomain != want.FromDomain {
		t.Errorf("send = %+v, want fields of %+v", got, want)
	}
	if string(got.Content) != string(want.Content) {
		t.Errorf("send %s Content = %s, want %s", want.ID, got.Content, want.Content)
	}
	sameTime(t, "send "+want.ID+" CreateTime", got.CreateTime, want.CreateTime)
}
