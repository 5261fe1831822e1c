package store

import (
	"cmp"
	"slices"
	"time"
)

// SoftBounce is one newsletter.softbounce event, counted towards its
// address's soft-bounce limit.
type SoftBounce struct {
	// Email is the lower-cased address.
	Email string
	// EventID is the event's id (the id of the report that made it).
	EventID int64
	// Time is when the bounce counts from: the report's receive time.
	Time time.Time
}

// SoftBounceLimit is the soft-bounce policy as the store applies it: Limit
// bounces of one address within Window reach the limit, which suppresses
// the address for SuppressFor (0: for ever) giving Reason.
type SoftBounceLimit struct {
	Limit       int
	Window      time.Duration
	Reason      string
	SuppressFor time.Duration
}

// SoftBounceLimitReached is an address whose soft bounces reached the
// limit, with the events that did, oldest first.
type SoftBounceLimitReached struct {
	Email    string
	EventIDs []int64
}

// SoftBounceRole is what a report stored now does to its address's
// soft-bounce count. Counting happens inside the ingest's own transaction
// (see Report.SoftBounce): a body's bounces cost no commit of their own,
// and a count never misses, or counts twice, a report that was stored.
type SoftBounceRole uint8

const (
	// SoftBounceIgnored leaves the count as it is.
	SoftBounceIgnored SoftBounceRole = iota
	// SoftBounceCounted is a newsletter.softbounce event: it counts
	// towards its address's limit.
	SoftBounceCounted
	// SoftBounceResets is a delivery, the proof that the address takes
	// mail: it clears the address's count.
	SoftBounceResets
)

// SoftBounceWork is what the reports one ingest call stored do to the
// soft-bounce counts: the counts of Resets are cleared, then Bounces are
// added to theirs under Limit, as of Now (the bounces' receive time). Of
// an address reaching the limit the store hands its bounces over in
// IngestResult.SoftBounceLimitsReached, clears its count, and suppresses
// it (SoftBounceSuppressions), all in the call's transaction.
type SoftBounceWork struct {
	Resets  []string
	Bounces []SoftBounce
	Limit   SoftBounceLimit
	Now     time.Time
	// profiles are the profile of each bounced address, as its last
	// bounce in the call has it.
	profiles map[string]string
	// event is the bounces' event name.
	event string
}

// Empty reports whether the work changes no count.
func (w *SoftBounceWork) Empty() bool { return len(w.Resets) == 0 && len(w.Bounces) == 0 }

// SoftBounceWorkOf is the soft-bounce work of the reports of one call that
// were stored (stored[i], with ids[i]): a duplicate does nothing. A bounce
// that comes before a delivery to its address in the call does not count:
// the delivery proved the address took mail since.
func SoftBounceWorkOf(reports []Report, stored []bool, ids []int64) SoftBounceWork {
	var w SoftBounceWork
	var lastDelivery map[string]int
	for i := range reports {
		if rp := &reports[i]; stored[i] && rp.SoftBounce == SoftBounceResets {
			if lastDelivery == nil {
				lastDelivery = map[string]int{}
			}
			if _, seen := lastDelivery[rp.Email]; !seen {
				w.Resets = append(w.Resets, rp.Email)
			}
			lastDelivery[rp.Email] = i
		}
	}
	for i := range reports {
		rp := &reports[i]
		if !stored[i] || rp.SoftBounce != SoftBounceCounted {
			continue
		}
		if d, ok := lastDelivery[rp.Email]; ok && d > i {
			continue
		}
		if w.profiles == nil {
			w.profiles = map[string]string{}
		}
		w.Bounces = append(w.Bounces, SoftBounce{Email: rp.Email, EventID: ids[i], Time: rp.ReceiveTime})
		w.profiles[rp.Email] = rp.ProfileID
		w.Limit, w.event = rp.SoftBounceLimit, rp.EventName
		if rp.ReceiveTime.After(w.Now) {
			w.Now = rp.ReceiveTime
		}
	}
	return w
}

// SoftBounceSuppressions are the suppressions of the addresses of w that
// reached the limit: the bounce that reached it is each one's event, and
// the earlier ones hold it too.
func (w *SoftBounceWork) SoftBounceSuppressions(reached []SoftBounceLimitReached) []Suppression {
	var expires time.Time
	if w.Limit.SuppressFor > 0 {
		expires = w.Now.Add(w.Limit.SuppressFor)
	}
	ss := make([]Suppression, len(reached))
	for i, r := range reached {
		last := len(r.EventIDs) - 1
		ss[i] = Suppression{
			Email: r.Email, ProfileID: w.profiles[r.Email], EventName: w.event, EventID: r.EventIDs[last],
			Reason: w.Limit.Reason, CreateTime: w.Now, ExpireTime: expires,
			Origin: SuppressionFromSoftBounceLimit, CauseEventIDs: r.EventIDs[:last],
		}
	}
	return ss
}

// CountSoftBounces merges the bounces of one address, those its count
// holds and new ones, into what its count holds next under limit as of
// now, or, when they reach the limit, into the bounces handed over (and
// an empty count). It reuses held.
func CountSoftBounces(held, added []SoftBounce, limit SoftBounceLimit, now time.Time) (kept []SoftBounce, reached *SoftBounceLimitReached) {
	bs := KeepSoftBounces(append(held, added...), now.Add(-limit.Window), limit.Limit)
	if len(bs) < limit.Limit {
		return bs, nil
	}
	r := &SoftBounceLimitReached{Email: bs[0].Email, EventIDs: make([]int64, len(bs))}
	for i, b := range bs {
		r.EventIDs[i] = b.EventID
	}
	return nil, r
}

// KeepSoftBounces returns, of one address's bounces in any order, those
// after cutoff, the newest limit of them, oldest first (by time, then
// id): what its count holds. It reuses bs.
func KeepSoftBounces(bs []SoftBounce, cutoff time.Time, limit int) []SoftBounce {
	bs = slices.DeleteFunc(bs, func(b SoftBounce) bool { return !b.Time.After(cutoff) })
	slices.SortFunc(bs, func(a, b SoftBounce) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.EventID, b.EventID)
	})
	// An event recorded twice (a caller retrying) counts once.
	bs = slices.CompactFunc(bs, func(a, b SoftBounce) bool { return a.EventID == b.EventID })
	if len(bs) > limit {
		bs = bs[len(bs)-limit:]
	}
	return bs
}
