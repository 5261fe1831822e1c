package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

func testCreateSend(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	// 10 recipients: 4 and 9 suppressed, batch 0 = 0-3, batch 1 = 5-8.
	f := newSend("send-1", 10, 4)
	f.send.RecipientCount = 999 // the store counts for itself
	stored := createSend(t, s, f)
	wantCounts := map[store.RecipientState]int{store.RecipientPending: 8, store.RecipientSuppressed: 2}

	for _, got := range []store.Send{stored, getSend(t, s, "send-1")} {
		sameSend(t, got, f.send)
		if got.RecipientCount != 10 {
			t.Errorf("RecipientCount = %d, want 10", got.RecipientCount)
		}
		if !got.DoneTime.IsZero() {
			t.Errorf("DoneTime = %v, want zero while recipients are pending", got.DoneTime)
		}
		sameCounts(t, "send-1", got.Counts, wantCounts)
	}
	sameRecipients(t, listRecipients(t, s, store.RecipientQuery{SendID: "send-1", AfterSeq: -1, Limit: 100}), f.storedRecipients())

	if _, err := s.GetSend(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSend(nope): err = %v, want ErrNotFound", err)
	}
	other := newSend("send-1", 3, 3)
	for i := range other.batches {
		other.batches[i].BulkID += "-other"
	}
	if _, _, err := s.CreateSend(ctx, other.send, other.recipients, other.batches); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("CreateSend of a taken id: err = %v, want ErrAlreadyExists", err)
	}
	if got := listRecipients(t, s, store.RecipientQuery{SendID: "send-1", AfterSeq: -1, Limit: 100}); len(got) != 10 {
		t.Errorf("recipients after a refused CreateSend = %d, want the first send's 10", len(got))
	}
}

// A send with nothing left to dispatch is done from the start.
func testCreateSendDone(t *testing.T, open opener) {
	tests := []struct {
		name       string
		recipients []store.Recipient
		want       map[store.RecipientState]int
	}{
		{"all suppressed or failed", []store.Recipient{
			{Seq: 0, Email: "a@example.com", State: store.RecipientSuppressed, BatchSeq: -1, Reason: "suppressed"},
			{Seq: 1, Email: "b@example.com", State: store.RecipientFailed, BatchSeq: -1, Reason: "no address"},
			{Seq: 2, Email: "c@example.com", State: store.RecipientSuppressed, BatchSeq: -1},
		}, map[store.RecipientState]int{store.RecipientSuppressed: 2, store.RecipientFailed: 1}},
		{"no recipients", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			f := newSend("done", 0, 1)
			f.recipients = tt.recipients
			stored := createSend(t, s, f)
			got := getSend(t, s, "done")
			for _, sn := range []store.Send{stored, got} {
				sameTime(t, "DoneTime", sn.DoneTime, f.send.CreateTime)
				sameCounts(t, tt.name, sn.Counts, tt.want)
				if sn.RecipientCount != len(tt.recipients) {
					t.Errorf("RecipientCount = %d, want %d", sn.RecipientCount, len(tt.recipients))
				}
			}
			if cs := claim(t, s, "d", at(time.Hour), time.Minute, 10); len(cs) != 0 {
				t.Errorf("claimed %q of a send with no batch", claimedKeys(cs))
			}
		})
	}
}

// Recipients that contradict their batches are refused, and nothing of
// the send is stored: a pending recipient in no batch would never be sent
// and keep the send from ever being done.
func testCreateSendInvalid(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(*sendFixture)
	}{
		{"pending in no batch", func(f *sendFixture) { f.recipients[0].BatchSeq = -1 }},
		{"suppressed in a batch", func(f *sendFixture) { f.recipients[0].State = store.RecipientSuppressed }},
		{"batch not in the send", func(f *sendFixture) { f.recipients[0].BatchSeq = 7 }},
		{"recipient without a state", func(f *sendFixture) { f.recipients[0].State = store.RecipientUnspecified }},
		{"batch without a state", func(f *sendFixture) { f.batches[1].State = 0 }},
		{"batch done", func(f *sendFixture) { f.batches[0].State = store.BatchDone }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSend(fmt.Sprint("invalid-", i), 5, 2)
			tt.change(&f)
			if _, _, err := s.CreateSend(ctx, f.send, f.recipients, f.batches); err == nil {
				t.Fatal("CreateSend: no error")
			}
			if _, err := s.GetSend(ctx, f.send.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("refused send was stored: GetSend err = %v", err)
			}
			if got := listRecipients(t, s, store.RecipientQuery{SendID: f.send.ID, AfterSeq: -1}); len(got) != 0 {
				t.Errorf("refused send has %d recipients stored", len(got))
			}
		})
	}
	if cs := claim(t, s, "d", at(time.Hour), time.Minute, 10); len(cs) != 0 {
		t.Errorf("claimed %q of refused sends", claimedKeys(cs))
	}
}

// A send the size of the biggest batches, and past the sizes an engine
// may write or read in one statement.
func testCreateSendLarge(t *testing.T, open opener) {
	s := open(t)
	f := newSend("big", 2345, 1000) // 469 suppressed, 1876 pending: batches of 1000 and 876
	stored := createSend(t, s, f)
	sameCounts(t, "big", stored.Counts, map[store.RecipientState]int{store.RecipientPending: 1876, store.RecipientSuppressed: 469})
	sameCounts(t, "big", getSend(t, s, "big").Counts, stored.Counts)

	var got []store.Recipient
	q := store.RecipientQuery{SendID: "big", AfterSeq: -1, Limit: 1000}
	for page := 0; page < 10; page++ {
		rs := listRecipients(t, s, q)
		if len(rs) == 0 {
			break
		}
		got = append(got, rs...)
		q.AfterSeq = rs[len(rs)-1].Seq
	}
	sameRecipients(t, got, f.storedRecipients())
	if rs := listRecipients(t, s, store.RecipientQuery{SendID: "big", AfterSeq: -1}); len(rs) != 50 {
		t.Errorf("recipients with Limit 0 = %d, want the default 50", len(rs))
	}

	cs := claim(t, s, "d", at(0), time.Minute, 10)
	if got, want := claimedKeys(cs), []string{"big/0", "big/1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("claimed %q, want %q", got, want)
	}
	for i, c := range cs {
		if got, want := seqs(c.Recipients), f.inBatch(i); !reflect.DeepEqual(got, want) {
			t.Errorf("batch %d recipients: %d, want %d", i, len(got), len(want))
		}
	}

	// Message ids are looked up in lists of a few thousand.
	completeBatch(t, s, "d", "big", 0, accepted("big", f.inBatch(0)))
	var ids []string
	for _, q := range f.inBatch(0) {
		ids = append(ids, fmt.Sprintf("big-m%d", q))
	}
	for i := range 1500 {
		ids = append(ids, fmt.Sprint("unknown-", i))
	}
	byID, err := s.RecipientsByMessageID(context.Background(), "", ids)
	if err != nil {
		t.Fatalf("RecipientsByMessageID: %v", err)
	}
	if len(byID) != 1000 {
		t.Errorf("RecipientsByMessageID found %d of 1000", len(byID))
	}
	for _, q := range f.inBatch(0) {
		if r := byID[fmt.Sprintf("big-m%d", q)]; r.Seq != q || r.SendID != "big" {
			t.Errorf("message big-m%d: recipient %s/%d, want big/%d", q, r.SendID, r.Seq, q)
			break
		}
	}
}

func testCreateSendIdempotent(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	first := newSend("first", 5, 2) // 0,1 | 2,3 ; 4 suppressed
	first.send.IdempotencyKey = "key-1"
	createSend(t, s, first)
	// What the key returns is the send as it is now, not as it was created.
	claim(t, s, "d", at(0), time.Minute, 1)
	completeBatch(t, s, "d", "first", 0, accepted("first", first.inBatch(0)))

	retry := newSend("retry", 3, 3)
	retry.send.IdempotencyKey = "key-1"
	retry.send.Subject = "a different subject"
	got, created, err := s.CreateSend(ctx, retry.send, retry.recipients, retry.batches)
	if err != nil {
		t.Fatalf("CreateSend with a used key: %v", err)
	}
	if created {
		t.Error("CreateSend with a used key: created = true")
	}
	sameSend(t, got, first.send)
	if got.RecipientCount != 5 {
		t.Errorf("RecipientCount = %d, want the first send's 5", got.RecipientCount)
	}
	sameCounts(t, "existing send", got.Counts, map[store.RecipientState]int{
		store.RecipientAccepted: 2, store.RecipientPending: 2, store.RecipientSuppressed: 1,
	})
	if _, err := s.GetSend(ctx, "retry"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the retry was stored: GetSend err = %v", err)
	}
	if cs := claim(t, s, "d", at(time.Hour), time.Minute, 10); !reflect.DeepEqual(claimedKeys(cs), []string{"first/1"}) {
		t.Errorf("claimed %q, want only first/1: the retry's batches must not be stored", claimedKeys(cs))
	}

	// Other keys, and no key at all, do not collide.
	for _, id := range []string{"other-key", "no-key-1", "no-key-2"} {
		f := newSend(id, 2, 2)
		if id == "other-key" {
			f.send.IdempotencyKey = "key-2"
		}
		createSend(t, s, f)
	}
	sends, err := s.ListSends(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sends) != 4 {
		t.Errorf("sends = %d, want 4", len(sends))
	}
}

// Concurrent creates with one key, as a client retrying on a timeout
// would make them: one send is created, every caller gets it.
func testCreateSendConcurrentIdempotency(t *testing.T, open opener) {
	s := open(t)
	const callers = 8
	var (
		wg      sync.WaitGroup
		results = make([]store.Send, callers)
		created = make([]bool, callers)
		errs    = make([]error, callers)
	)
	for i := range callers {
		wg.Go(func() {
			f := newSend(fmt.Sprint("attempt-", i), 20, 5)
			f.send.IdempotencyKey = "same-key"
			f.send.RequestDigest = requestDigest("the one request")
			results[i], created[i], errs[i] = s.CreateSend(context.Background(), f.send, f.recipients, f.batches)
		})
	}
	wg.Wait()
	var winner string
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if created[i] {
			if winner != "" {
				t.Errorf("both %s and %s were created", winner, results[i].ID)
			}
			winner = results[i].ID
		}
	}
	if winner == "" {
		t.Fatal("no caller created the send")
	}
	for i, r := range results {
		if r.ID != winner {
			t.Errorf("caller %d got send %q, want %q", i, r.ID, winner)
		}
	}
	sends, err := s.ListSends(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(sends) != 1 {
		t.Errorf("sends stored = %d, want 1", len(sends))
	}
	if cs := claim(t, s, "d", at(0), time.Minute, 100); len(cs) != 4 {
		t.Errorf("batches stored = %d, want the one send's 4", len(cs))
	}
}

// requestDigest stands in for the server's SHA-256 of a request.
func requestDigest(request string) []byte {
	d := sha256.Sum256([]byte(request))
	return d[:]
}

// An idempotency key belongs to the sender account, and a send remembers
// the digest of the request that made it: the same request with the key
// gets the send back, a different one an IdempotencyKeyReusedError naming
// it, and a send stored without a digest (before digests were kept) counts
// every retry as the same request.
func testCreateSendIdempotencyScope(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	first := newSend("first", 3, 2)
	first.send.IdempotencyKey = "key-1"
	first.send.RequestDigest = requestDigest("request A")
	createSend(t, s, first)
	legacy := newSend("legacy", 3, 2)
	legacy.send.IdempotencyKey = "key-legacy"
	createSend(t, s, legacy)

	tests := []struct {
		name        string
		sender, key string
		digest      []byte
		wantSend    string // the send returned, or held by the key when wantReused
		wantCreated bool
		wantReused  bool
	}{
		{"same sender, key and request", "sender-1", "key-1", requestDigest("request A"), "first", false, false},
		{"same sender and key, other request", "sender-1", "key-1", requestDigest("request B"), "first", false, true},
		{"same sender and key, request without digest", "sender-1", "key-1", nil, "first", false, true},
		{"other sender, same key", "sender-2", "key-1", requestDigest("request B"), "other-sender", true, false},
		{"other sender's key, repeated", "sender-2", "key-1", requestDigest("request B"), "other-sender", false, false},
		{"send stored without digest", "sender-1", "key-legacy", requestDigest("request C"), "legacy", false, false},
		{"legacy key from another sender", "sender-2", "key-legacy", requestDigest("request C"), "other-legacy", true, false},
	}
	for _, tt := range tests {
		id := tt.wantSend
		if !tt.wantCreated {
			id = "attempt-" + fmt.Sprint(len(tt.name))
		}
		f := newSend(id, 2, 2)
		f.send.SenderID, f.send.IdempotencyKey, f.send.RequestDigest = tt.sender, tt.key, tt.digest
		got, created, err := s.CreateSend(ctx, f.send, f.recipients, f.batches)
		if tt.wantReused {
			var reused *store.IdempotencyKeyReusedError
			if !errors.As(err, &reused) || !errors.Is(err, store.ErrIdempotencyKeyReused) {
				t.Errorf("%s: err = %v, want an IdempotencyKeyReusedError", tt.name, err)
				continue
			}
			if reused.SendID != tt.wantSend {
				t.Errorf("%s: the error names send %q, want %q", tt.name, reused.SendID, tt.wantSend)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: CreateSend: %v", tt.name, err)
			continue
		}
		if got.ID != tt.wantSend || created != tt.wantCreated {
			t.Errorf("%s: got send %q created %v, want %q created %v", tt.name, got.ID, created, tt.wantSend, tt.wantCreated)
		}
	}
	sends, err := s.ListSends(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, sn := range sends {
		ids = append(ids, sn.ID)
	}
	slices.Sort(ids)
	if want := []string{"first", "legacy", "other-legacy", "other-sender"}; !slices.Equal(ids, want) {
		t.Errorf("sends stored = %q, want %q", ids, want)
	}
	for id, want := range map[string][]byte{"first": requestDigest("request A"), "legacy": nil} {
		got, err := s.GetSend(ctx, id)
		if err != nil {
			t.Fatalf("GetSend(%s): %v", id, err)
		}
		if !bytes.Equal(got.RequestDigest, want) {
			t.Errorf("GetSend(%s).RequestDigest = %x, want %x", id, got.RequestDigest, want)
		}
	}
}

// Concurrent creates with one key but different requests: one creates
// the send, every other caller is told the key is taken, by that send.
func testCreateSendConcurrentKeyReuse(t *testing.T, open opener) {
	s := open(t)
	const callers = 8
	var (
		wg      sync.WaitGroup
		results = make([]store.Send, callers)
		created = make([]bool, callers)
		errs    = make([]error, callers)
	)
	for i := range callers {
		wg.Go(func() {
			f := newSend(fmt.Sprint("attempt-", i), 4, 2)
			f.send.IdempotencyKey = "same-key"
			f.send.RequestDigest = requestDigest(fmt.Sprint("request ", i))
			results[i], created[i], errs[i] = s.CreateSend(context.Background(), f.send, f.recipients, f.batches)
		})
	}
	wg.Wait()
	winner := ""
	for i := range callers {
		if errs[i] == nil && created[i] {
			if winner != "" {
				t.Errorf("both %s and %s were created", winner, results[i].ID)
			}
			winner = results[i].ID
		}
	}
	if winner == "" {
		t.Fatalf("no caller created the send: errors %v", errs)
	}
	for i := range callers {
		if results[i].ID == winner && errs[i] == nil {
			continue
		}
		var reused *store.IdempotencyKeyReusedError
		if !errors.As(errs[i], &reused) || reused.SendID != winner {
			t.Errorf("caller %d: send %q, err %v; want an IdempotencyKeyReusedError naming %q", i, results[i].ID, errs[i], winner)
		}
	}
	sends, err := s.ListSends(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(sends) != 1 {
		t.Errorf("sends stored = %d, want 1", len(sends))
	}
}

func testListSends(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	// e and d share a create time: ties go by id, highest first.
	created := map[string]time.Duration{"a": time.Minute, "b": 3 * time.Minute, "c": 2 * time.Minute, "d": 4 * time.Minute, "e": 4 * time.Minute}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		f := newSend(id, 5, 4)
		f.send.CreateTime = at(created[id])
		createSend(t, s, f)
	}
	claim(t, s, "d", at(0), time.Minute, 100)
	completeBatch(t, s, "d", "c", 0, accepted("c", []int{0, 1, 2, 3}))

	ids := func(ss []store.Send) []string {
		var out []string
		for _, sn := range ss {
			out = append(out, sn.ID)
		}
		return out
	}
	tests := []struct {
		before string
		limit  int
		want   []string
	}{
		{"", 0, []string{"e", "d", "b", "c", "a"}},
		{"", 2, []string{"e", "d"}},
		{"e", 2, []string{"d", "b"}},
		{"d", 10, []string{"b", "c", "a"}},
		{"a", 10, nil},
	}
	for _, tt := range tests {
		got, err := s.ListSends(ctx, tt.before, tt.limit)
		if err != nil {
			t.Fatalf("ListSends(%q, %d): %v", tt.before, tt.limit, err)
		}
		if !reflect.DeepEqual(ids(got), tt.want) {
			t.Errorf("ListSends(%q, %d) = %q, want %q", tt.before, tt.limit, ids(got), tt.want)
		}
	}
	if _, err := s.ListSends(ctx, "nope", 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ListSends before an unknown send: err = %v, want ErrNotFound", err)
	}

	all, err := s.ListSends(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range all {
		f := newSend(sn.ID, 5, 4)
		f.send.CreateTime = at(created[sn.ID])
		sameSend(t, sn, f.send)
		want := map[store.RecipientState]int{store.RecipientPending: 4, store.RecipientSuppressed: 1}
		if sn.ID == "c" {
			want = map[store.RecipientState]int{store.RecipientAccepted: 4, store.RecipientSuppressed: 1}
			if sn.DoneTime.IsZero() {
				t.Error("listed send c: DoneTime zero, want set")
			}
		}
		sameCounts(t, "listed send "+sn.ID, sn.Counts, want)
	}
}

func testListRecipients(t *testing.T, open opener) {
	s := open(t)
	f := newSend("s", 10, 4) // batch 0 = 0-3, batch 1 = 5-8, 4 and 9 suppressed
	createSend(t, s, f)
	claim(t, s, "d", at(0), time.Minute, 1)
	completeBatch(t, s, "d", "s", 0, []store.RecipientOutcome{
		{Seq: 0, State: store.RecipientAccepted, MessageID: "m0"},
		{Seq: 1, State: store.RecipientAccepted, MessageID: "m1"},
		{Seq: 2, State: store.RecipientRejected, Reason: "invalid address"},
		{Seq: 3, State: store.RecipientFailed, Reason: "infobip said no"},
	})
	tests := []struct {
		name string
		q    store.RecipientQuery
		want []int
	}{
		{"all", store.RecipientQuery{AfterSeq: -1}, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"after", store.RecipientQuery{AfterSeq: 3, Limit: 3}, []int{4, 5, 6}},
		{"after zero is not from the first", store.RecipientQuery{AfterSeq: 0, Limit: 2}, []int{1, 2}},
		{"pending", store.RecipientQuery{State: store.RecipientPending, AfterSeq: -1}, []int{5, 6, 7, 8}},
		{"pending after", store.RecipientQuery{State: store.RecipientPending, AfterSeq: 5, Limit: 2}, []int{6, 7}},
		{"suppressed", store.RecipientQuery{State: store.RecipientSuppressed, AfterSeq: -1}, []int{4, 9}},
		{"accepted", store.RecipientQuery{State: store.RecipientAccepted, AfterSeq: -1}, []int{0, 1}},
		{"rejected", store.RecipientQuery{State: store.RecipientRejected, AfterSeq: -1}, []int{2}},
		{"past the end", store.RecipientQuery{AfterSeq: 9}, []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.SendID = "s"
			if got := seqs(listRecipients(t, s, tt.q)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListRecipients = %v, want %v", got, tt.want)
			}
		})
	}
	if got := listRecipients(t, s, store.RecipientQuery{SendID: "nope", AfterSeq: -1}); len(got) != 0 {
		t.Errorf("recipients of an unknown send = %d, want 0", len(got))
	}
	got := listRecipients(t, s, store.RecipientQuery{SendID: "s", AfterSeq: 1, Limit: 2})
	want := f.storedRecipients()[2:4]
	want[0].State, want[0].Reason = store.RecipientRejected, "invalid address"
	want[1].State, want[1].Reason = store.RecipientFailed, "infobip said no"
	sameRecipients(t, got, want)
}

// The webhook's lookups, scoped to the connection whose secret
// authenticated the report: a recipient of another connection's send is
// not found, by message id or by address; "" finds every one.
func testRecipientLookupsByConnection(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	a, b := newSend("a", 2, 2), newSend("b", 2, 2)
	b.send.ConnectionID = "conn-2"
	createSend(t, s, a)
	createSend(t, s, b)
	claim(t, s, "d", at(0), time.Minute, 10)
	completeBatch(t, s, "d", "a", 0, accepted("a", []int{0, 1}))
	completeBatch(t, s, "d", "b", 0, accepted("b", []int{0, 1}))

	tests := []struct {
		connection string
		want       []string // the sends found, of a-m0 and b-m0 and of the addresses a/0 and b/0
	}{
		{"", []string{"a", "b"}},
		{"conn-1", []string{"a"}},
		{"conn-2", []string{"b"}},
		{"conn-unknown", nil},
	}
	for _, tt := range tests {
		byID, err := s.RecipientsByMessageID(ctx, tt.connection, []string{"a-m0", "b-m0"})
		if err != nil {
			t.Fatalf("RecipientsByMessageID(%q): %v", tt.connection, err)
		}
		var got []string
		for _, id := range []string{"a-m0", "b-m0"} {
			if r, ok := byID[id]; ok {
				got = append(got, r.SendID)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("RecipientsByMessageID(%q) found the recipients of %q, want %q", tt.connection, got, tt.want)
		}
		got = nil
		for _, f := range []sendFixture{a, b} {
			r, err := s.RecipientByEmail(ctx, tt.connection, f.send.ID, f.recipients[0].Email)
			switch {
			case err == nil:
				got = append(got, r.SendID)
			case !errors.Is(err, store.ErrNotFound):
				t.Fatalf("RecipientByEmail(%q, %s): %v", tt.connection, f.send.ID, err)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("RecipientByEmail(%q) found the recipients of %q, want %q", tt.connection, got, tt.want)
		}
	}
}

func testRecipientLookups(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	f := newSend("s", 5, 2)     // batch 0 = 0,1, batch 1 = 2,3, 4 suppressed
	g := newSend("other", 3, 3) // its emails differ by their domain
	createSend(t, s, f)
	createSend(t, s, g)
	claim(t, s, "d", at(0), time.Minute, 10)
	clock := clockAround(func() { completeBatch(t, s, "d", "s", 0, accepted("s", []int{0, 1})) })
	completeBatch(t, s, "d", "other", 0, accepted("other", []int{0, 1, 2}))

	byID, err := s.RecipientsByMessageID(ctx, "", []string{"s-m1", "other-m0", "nope", "", "s-m1"})
	if err != nil {
		t.Fatalf("RecipientsByMessageID: %v", err)
	}
	if len(byID) != 2 {
		t.Errorf("RecipientsByMessageID = %d entries, want 2", len(byID))
	}
	want := f.storedRecipients()[1]
	want.State, want.MessageID = store.RecipientAccepted, "s-m1"
	sameRecipient(t, byID["s-m1"], messageSent(t, clock, want, byID["s-m1"]))
	if r := byID["other-m0"]; r.SendID != "other" || r.Seq != 0 {
		t.Errorf("other-m0 = %s/%d, want other/0", r.SendID, r.Seq)
	}
	if empty, err := s.RecipientsByMessageID(ctx, "", nil); err != nil || len(empty) != 0 {
		t.Errorf("RecipientsByMessageID(nil) = %v, %v; want empty", empty, err)
	}

	r, err := s.RecipientByEmail(ctx, "", "s", f.recipients[3].Email)
	if err != nil {
		t.Fatalf("RecipientByEmail: %v", err)
	}
	sameRecipient(t, r, f.storedRecipients()[3])
	for _, tt := range []struct{ send, email string }{
		{"s", "nobody@example.com"},
		{"s", g.recipients[0].Email},
		{"nope", f.recipients[0].Email},
	} {
		if _, err := s.RecipientByEmail(ctx, "", tt.send, tt.email); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RecipientByEmail(%s, %s): err = %v, want ErrNotFound", tt.send, tt.email, err)
		}
	}
}
