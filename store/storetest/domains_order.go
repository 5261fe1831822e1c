package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// A body's events are stored in body order (their ids ascending), each of
// Infobip's once (the first time), and each of ibmail's own (no event id)
// every time, however the event ids sort.
func testDomainEventsBodyOrder(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	body := []store.DomainEvent{
		ownEvent("d1.example", store.DomainEventPaused, store.DomainPaused, at(0)),
		platformEvent("ev-z", "d2.example", store.DomainEventWarning, store.DomainWarned, at(time.Second), 3.5),
		ownEvent("d1.example", store.DomainEventUnblocked, store.DomainActive, at(2*time.Second)),
		platformEvent("ev-a", "d1.example", store.DomainEventWarning, store.DomainWarned, at(3*time.Second), 3.2),
		platformEvent("ev-z", "d2.example", store.DomainEventBlocked, store.DomainBlocked, at(4*time.Second), 9),
		ownEvent("d2.example", store.DomainEventPaused, store.DomainPaused, at(5*time.Second)),
	}
	cases := []struct {
		name string
		want []bool
	}{
		{"first", []bool{true, true, true, true, false, true}},
		// Again: Infobip's events are duplicates, ibmail's own are not.
		{"again", []bool{true, false, true, false, false, true}},
	}
	var stored []store.DomainEvent // in body order, over the cases
	for _, c := range cases {
		res, err := s.IngestDomainEvents(ctx, body, nil)
		if err != nil {
			t.Fatalf("%s: IngestDomainEvents: %v", c.name, err)
		}
		accepted := 0
		for i, ok := range c.want {
			if ok {
				accepted++
				stored = append(stored, body[i])
			}
		}
		if want := (store.IngestResult{Stored: c.want, Accepted: accepted, Duplicates: len(body) - accepted}); !reflect.DeepEqual(res, want) {
			t.Errorf("%s: IngestDomainEvents = %+v, want %+v", c.name, res, want)
		}
		if c.name != "first" {
			continue
		}
		// The last event of each domain in body order applies last.
		if d := getSendingDomain(t, s, "d1.example"); d.State != store.DomainWarned {
			t.Errorf("d1.example = %+v, want warned by ev-a", d)
		}
		if d := getSendingDomain(t, s, "d2.example"); d.State != store.DomainPaused {
			t.Errorf("d2.example = %+v, want paused by ibmail", d)
		}
	}
	var got []store.DomainEvent
	for _, d := range []string{"d1.example", "d2.example"} {
		evs, err := s.ListDomainEvents(ctx, d, 100)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, evs...)
	}
	slices.SortFunc(got, func(a, b store.DomainEvent) int { return int(a.ID - b.ID) })
	what := func(evs []store.DomainEvent) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, fmt.Sprintf("%s %s %s %s", ev.Domain, ev.EventID, ev.Type, ev.ReceiveTime.UTC().Format(time.RFC3339)))
		}
		return out
	}
	if g, w := what(got), what(stored); !reflect.DeepEqual(g, w) {
		t.Errorf("events by id:\n%q\nwant in body order:\n%q", g, w)
	}
}

// Concurrent bodies naming the same domains, in different orders and
// sharing events, all succeed (no deadlock the store gives up on), and
// each shared event is stored for exactly one of them.
func testDomainEventsConcurrent(t *testing.T, open opener) {
	s := open(t)
	const callers, domains = 8, 6
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		storedN = map[string]int{}
		errs    = make(chan error, callers)
	)
	for c := range callers {
		wg.Go(func() {
			var body []store.DomainEvent
			for j := range domains {
				// Each caller walks the domains from its own start, in
				// its own direction.
				k := (c + j) % domains
				if c%2 == 1 {
					k = (c + domains - j) % domains
				}
				d := fmt.Sprintf("d%d.example", k)
				body = append(body,
					platformEvent(fmt.Sprintf("shared-%d", k), d, store.DomainEventWarning, store.DomainWarned, at(time.Duration(k)*time.Second), 3.5),
					platformEvent(fmt.Sprintf("own-%d-%d", c, k), d, store.DomainEventWarning, store.DomainWarned, at(time.Minute), 3.5),
					ownEvent(d, store.DomainEventPaused, store.DomainPaused, at(time.Hour)))
			}
			res, err := s.IngestDomainEvents(context.Background(), body, nil)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for i, ok := range res.Stored {
				if ok {
					storedN[body[i].EventID]++
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("IngestDomainEvents: %v", err)
	}
	if t.Failed() {
		return
	}
	for k := range domains {
		if n := storedN[fmt.Sprintf("shared-%d", k)]; n != 1 {
			t.Errorf("shared-%d stored for %d callers, want 1", k, n)
		}
	}
	if n := storedN[""]; n != callers*domains {
		t.Errorf("%d of ibmail's own events stored, want %d", n, callers*domains)
	}
	for k := range domains {
		evs, err := s.ListDomainEvents(context.Background(), fmt.Sprintf("d%d.example", k), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 + 2*callers; len(evs) != want {
			t.Errorf("d%d.example: %d events, want %d", k, len(evs), want)
		}
	}
}
