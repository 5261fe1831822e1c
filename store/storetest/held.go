package storetest

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// sendFrom is newSend with a from-domain.
func sendFrom(id, domain string, n, perBatch int) sendFixture {
	f := newSend(id, n, perBatch)
	f.send.FromDomain = domain
	return f
}

// The batches of a send whose domain is blocked or paused are neither
// claimed nor counted while it is held, and go, once each, when the block
// runs out by its Until or an unblock lifts it. A warning holds nothing.
func testClaimHeldDomains(t *testing.T, open opener) {
	s := open(t)
	sends := []sendFixture{
		sendFrom("expires", "expires.example", 4, 2), // blocked until at(2h)
		sendFrom("blocked", "blocked.example", 2, 2), // blocked with no end
		sendFrom("paused", "paused.example", 2, 2),   // paused by ibmail
		sendFrom("warned", "warned.example", 2, 2),   // warned: not held
		sendFrom("free", "free.example", 2, 2),       // no event at all
		sendFrom("none", "", 2, 2),                   // no domain
	}
	for _, f := range sends {
		if got := createSend(t, s, f); got.FromDomain != f.send.FromDomain {
			t.Errorf("CreateSend(%s) FromDomain = %q, want %q", f.send.ID, got.FromDomain, f.send.FromDomain)
		}
		if got := getSend(t, s, f.send.ID); got.FromDomain != f.send.FromDomain {
			t.Errorf("GetSend(%s) FromDomain = %q, want %q", f.send.ID, got.FromDomain, f.send.FromDomain)
		}
	}
	expiring := platformEvent("b1", "expires.example", store.DomainEventBlocked, store.DomainBlocked, at(-time.Hour), 5.5)
	expiring.Until = at(2 * time.Hour)
	noEnd := platformEvent("b2", "blocked.example", store.DomainEventBlocked, store.DomainBlocked, at(-time.Hour), 5.5)
	noEnd.Until = time.Time{}
	ingestDomainEvents(t, s, expiring, noEnd,
		ownEvent("paused.example", store.DomainEventPaused, store.DomainPaused, at(-time.Hour)),
		platformEvent("w1", "warned.example", store.DomainEventWarning, store.DomainWarned, at(-time.Hour), 3.5))

	claimed := map[string][]store.ClaimedBatch{}
	take := func(what string, now time.Time, want []string) {
		t.Helper()
		cs := claim(t, s, "d", now, time.Minute, 100)
		got := claimedKeys(cs)
		slices.Sort(got)
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: claimed %q, want %q", what, got, want)
		}
		for _, c := range cs {
			key := claimedKeys([]store.ClaimedBatch{c})[0]
			claimed[key] = append(claimed[key], c)
			if key == "free/0" && what == "first claim" {
				continue // left in flight, see below
			}
			completeBatch(t, s, "d", c.SendID, c.Seq, accepted(c.SendID, seqs(c.Recipients)))
		}
	}
	take("first claim", at(time.Minute), []string{"free/0", "none/0", "warned/0"})
	take("again, held", at(2*time.Minute), nil)

	// A batch in flight whose domain is blocked meanwhile is not taken
	// over when its lease runs out.
	blockFree := platformEvent("b3", "free.example", store.DomainEventBlocked, store.DomainBlocked, at(3*time.Minute), 6)
	blockFree.Until = time.Time{}
	ingestDomainEvents(t, s, blockFree)
	take("lease run out, domain blocked", at(time.Hour), nil)

	take("the block's Until has passed", at(2*time.Hour), []string{"expires/0", "expires/1"})
	take("still held without an unblock", at(48*time.Hour), nil)
	for _, d := range []string{"blocked.example", "paused.example", "free.example"} {
		ingestDomainEvents(t, s, ownEvent(d, store.DomainEventUnblocked, store.DomainActive, at(49*time.Hour)))
	}
	take("after the unblocks", at(50*time.Hour), []string{"blocked/0", "free/0", "paused/0"})
	take("nothing left", at(100*time.Hour), nil)

	for key, cs := range claimed {
		wantClaims, wantAttempts, wantMaybe := 1, 1, false
		if key == "free/0" {
			// Claimed, left in flight, held, then taken over as maybe
			// sent: the hold counted no attempt.
			wantClaims, wantAttempts, wantMaybe = 2, 2, true
		}
		if len(cs) != wantClaims {
			t.Errorf("%s claimed %d times, want %d", key, len(cs), wantClaims)
			continue
		}
		if c := cs[len(cs)-1]; c.Attempts != wantAttempts || c.MaybeSent != wantMaybe {
			t.Errorf("%s: attempts %d, maybe sent %v; want %d, %v", key, c.Attempts, c.MaybeSent, wantAttempts, wantMaybe)
		}
		if c := cs[len(cs)-1]; c.Send.FromDomain == "" && c.SendID != "none" {
			t.Errorf("%s: claimed send has no FromDomain", key)
		}
	}
	for _, f := range sends {
		if sn := getSend(t, s, f.send.ID); sn.DoneTime.IsZero() {
			t.Errorf("send %s not done: counts %v", sn.ID, sn.Counts)
		}
	}
	if b, err := s.Backlog(context.Background(), at(100*time.Hour)); err != nil || b.DueBatches != 0 {
		t.Errorf("Backlog = %+v, %v; want nothing due", b, err)
	}
}
