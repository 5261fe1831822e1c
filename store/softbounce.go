package store

import (
	"cmp"
	"context"
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
// bounces of one address within Window reach the limit.
type SoftBounceLimit struct {
	Limit  int
	Window time.Duration
}

// SoftBounceLimitReached is an address whose soft bounces reached the
// limit, with the events that did, oldest first.
type SoftBounceLimitReached struct {
	Email    string
	EventIDs []int64
}

// SoftBounceStore counts soft bounces per address for the soft-bounce
// limit. A delivery resets an address's count; reaching the limit hands
// the bounces to the caller, which suppresses the address, and resets it
// too.
type SoftBounceStore interface {
	// RecordSoftBounces adds bounces to their addresses' counts in one
	// transaction, first dropping those at or before now-limit.Window (and
	// any of bounces as old), and returns the addresses that now hold
	// limit.Limit bounces, with their events, clearing their counts: of
	// concurrent callers, exactly one gets an address that reached the
	// limit. A count holds at most limit.Limit bounces, the newest.
	// limit.Limit must be positive.
	RecordSoftBounces(ctx context.Context, bounces []SoftBounce, limit SoftBounceLimit, now time.Time) ([]SoftBounceLimitReached, error)
	// ResetSoftBounces clears the counts of emails: each address delivered
	// to. Addresses without a count cost a lookup, and no write at all
	// when none of emails has one.
	ResetSoftBounces(ctx context.Context, emails []string) error
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
