package server_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store"
)

// pingCounter is the real store, counting its pings.
type pingCounter struct {
	store.Store
	pings atomic.Int64
}

func (c *pingCounter) Ping(ctx context.Context) error {
	c.pings.Add(1)
	return c.Store.Ping(ctx)
}

// TestReadyzBoundsStorePings: /readyz is open to anyone who reaches the
// webhook's listener, so a flood of probes must not become a flood of
// store round trips.
func TestReadyzBoundsStorePings(t *testing.T) {
	var counter *pingCounter
	env := newTestEnv(t, withServerOptions(func(o *server.Options) {
		counter = &pingCounter{Store: o.Store}
		o.Store = counter
	}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if code, _ := env.do(t, http.MethodGet, "/readyz", "", nil); code != http.StatusOK {
					t.Errorf("GET /readyz = %d, want 200", code)
					return
				}
			}
		})
	}
	wg.Wait()
	// 200 probes within a few seconds at most: one ping per second.
	if got := counter.pings.Load(); got < 1 || got > 5 {
		t.Errorf("200 probes made %d store pings, want 1 to 5", got)
	}
}
