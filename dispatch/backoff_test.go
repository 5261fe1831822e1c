package dispatch

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 30 * time.Second}
	tests := []struct {
		name       string
		attempts   int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{"first retry", 1, 0, 500 * time.Millisecond, time.Second},
		{"third retry doubles twice", 3, 0, 2 * time.Second, 4 * time.Second},
		{"capped", 20, 0, 15 * time.Second, 30 * time.Second},
		{"retry-after wins when longer", 1, 10 * time.Second, 10 * time.Second, 10 * time.Second},
		{"retry-after loses when shorter", 6, time.Millisecond, 15 * time.Second, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 200 {
				got := b.Delay(tt.attempts, tt.retryAfter)
				if got < tt.lo || got > tt.hi {
					t.Fatalf("Delay(%d, %v) = %v, want within [%v, %v]", tt.attempts, tt.retryAfter, got, tt.lo, tt.hi)
				}
			}
		})
	}
}
