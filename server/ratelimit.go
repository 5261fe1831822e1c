package server

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DefaultTokenRate is the requests per second each caller token may make
// when Options.TokenRate is not set.
const DefaultTokenRate = 200

// tokenLimiter keeps one token bucket per caller token. Tokens come only
// from the tokens file, so the map is bounded by it.
type tokenLimiter struct {
	perSecond rate.Limit
	burst     int
	mu        sync.Mutex
	byToken   map[string]*rate.Limiter
}

func newTokenLimiter(perSecond float64) *tokenLimiter {
	if perSecond <= 0 {
		perSecond = DefaultTokenRate
	}
	// A burst of one second's worth lets a client fire a page of calls at
	// once while keeping the average at the rate.
	burst := int(math.Ceil(perSecond))
	return &tokenLimiter{perSecond: rate.Limit(perSecond), burst: burst, byToken: map[string]*rate.Limiter{}}
}

// allow takes one request from the token's bucket, or returns
// RESOURCE_EXHAUSTED with a RetryInfo saying when to try again.
func (l *tokenLimiter) allow(id string) error {
	l.mu.Lock()
	lim, ok := l.byToken[id]
	if !ok {
		lim = rate.NewLimiter(l.perSecond, l.burst)
		l.byToken[id] = lim
	}
	l.mu.Unlock()
	now := time.Now()
	r := lim.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	// Give the request back: it is refused, not queued.
	r.CancelAt(now)
	return rateLimited(delay)
}

// rateLimited builds the RESOURCE_EXHAUSTED answer, with the delay both in a
// RetryInfo (for clients that read details) and in the message.
func rateLimited(delay time.Duration) error {
	delay = delay.Round(time.Millisecond)
	if delay <= 0 {
		delay = time.Millisecond
	}
	msg := fmt.Sprintf("too many requests for this caller token; retry after %s", delay)
	st, err := status.New(codes.ResourceExhausted, msg).WithDetails(
		&errdetails.ErrorInfo{Reason: string(ReasonRateLimited), Domain: errorDomain},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)},
	)
	if err != nil {
		return status.Error(codes.ResourceExhausted, msg)
	}
	return st.Err()
}
