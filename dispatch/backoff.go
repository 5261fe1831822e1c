package dispatch

import (
	"math/rand/v2"
	"time"
)

// Backoff spaces retries: exponential from Base up to Max, with full
// jitter so that batches failed together do not retry together, and never
// sooner than a Retry-After Infobip asked for.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// Delay is the wait before attempt number attempts+1, given Infobip's
// Retry-After (0 when it sent none).
func (b Backoff) Delay(attempts int, retryAfter time.Duration) time.Duration {
	ceiling := b.Base
	for i := 1; i < attempts && ceiling < b.Max; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, b.Max)
	d := ceiling/2 + time.Duration(rand.Int64N(int64(ceiling/2)+1))
	return max(d, retryAfter)
}
