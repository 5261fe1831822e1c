package store

import (
	"context"
	"time"
)

// SendRateStore shares each connection's request rate among all the
// dispatchers of a store: Infobip limits an account, not a replica, so N
// replicas each applying the rate on their own would send N times too fast.
type SendRateStore interface {
	// TakeSendSlot takes a request slot of connectionID's rate, which
	// allows perSecond requests a second in bursts of up to burst, and
	// returns 0; or, when no slot is free at now, takes nothing and returns
	// how long until one is.
	TakeSendSlot(ctx context.Context, connectionID string, perSecond float64, burst int, now time.Time) (time.Duration, error)
}

// NextSendSlot is the rule both engines apply to the one time they store
// per connection (the generic cell rate algorithm): tat is when the rate
// would next be idle, the zero time for a connection never used. A request
// at now fits if, once the burst allowance is taken off, tat is not in the
// future; it then moves tat one interval on. Otherwise wait says how long
// until it fits, and tat stays as it was.
func NextSendSlot(tat, now time.Time, perSecond float64, burst int) (next time.Time, wait time.Duration) {
	interval := time.Duration(float64(time.Second) / perSecond)
	tolerance := interval * time.Duration(max(burst, 1)-1)
	if tat.Before(now) {
		tat = now
	}
	if ahead := tat.Sub(now); ahead > tolerance {
		return tat, ahead - tolerance
	}
	return tat.Add(interval), 0
}
