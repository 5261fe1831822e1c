package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// testSendSlots checks the shared request rate of connections: bursts,
// the wait it answers, independence between connections, and that takers
// racing for one connection's slots get no more than the burst between
// them, which is what makes the rate hold across replicas.
func testSendSlots(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	const perSecond, burst = 10, 3 // a slot every 100 ms
	steps := []struct {
		name       string
		connection string
		at         time.Duration
		want       time.Duration
	}{
		{"first of the burst", "c1", 0, 0},
		{"second of the burst", "c1", 0, 0},
		{"third of the burst", "c1", 0, 0},
		{"past the burst", "c1", 0, 100 * time.Millisecond},
		{"still early", "c1", 40 * time.Millisecond, 60 * time.Millisecond},
		{"once the wait is over", "c1", 100 * time.Millisecond, 0},
		{"right after", "c1", 100 * time.Millisecond, 100 * time.Millisecond},
		{"another connection has its own rate", "c2", 0, 0},
		{"after a long idle time, a whole burst again", "c1", time.Hour, 0},
		{"second after idling", "c1", time.Hour, 0},
		{"third after idling", "c1", time.Hour, 0},
		{"past that burst", "c1", time.Hour, 100 * time.Millisecond},
	}
	for _, st := range steps {
		got, err := s.TakeSendSlot(ctx, st.connection, perSecond, burst, at(st.at))
		if err != nil {
			t.Fatalf("%s: TakeSendSlot: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: wait = %v, want %v", st.name, got, st.want)
		}
	}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted int
	)
	for range 20 {
		wg.Go(func() {
			wait, err := s.TakeSendSlot(ctx, "c3", perSecond, 5, at(0))
			if err != nil {
				t.Errorf("concurrent TakeSendSlot: %v", err)
				return
			}
			if wait == 0 {
				mu.Lock()
				granted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if granted != 5 {
		t.Errorf("20 concurrent takers got %d slots at one instant, want the burst of 5", granted)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeSendSlot(ctx, "c1", perSecond, burst, at(0)); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("TakeSendSlot after Close: err = %v, want ErrUnavailable", err)
	}
}
