package sqlite

import (
	"context"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// TestSegmentationAtScale fills a database with IBMAIL_SQLITE_SCALE events
// (e.g. 1000000) over a year and times both segmentation plans; it is how
// the plan choice in SearchProfiles was made. It checks that both plans
// agree, page after page.
func TestSegmentationAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("IBMAIL_SQLITE_SCALE"))
	if n <= 0 {
		t.Skip("set IBMAIL_SQLITE_SCALE to a number of events")
	}
	s := openInternal(t)
	ctx := context.Background()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	year := int64(365 * 24 * time.Hour / time.Microsecond)
	fill := time.Now()
	// One event per report; 10% hb, 10% sb, 80% open; 5 events per profile.
	if _, err := s.writeDB.ExecContext(ctx, `
		WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
		INSERT INTO delivery_reports (id, message_id, status_id, error_id, done_at, connection_id,
			profile_id, email, outcome, event_name, rule, receive_time)
		SELECT i, 'm' || i, 5, 0, '', '', printf('p%07d', abs(random()) % (? / 5)), 'e' || i || '@example.com', 1,
			CASE i % 10 WHEN 0 THEN 'hb' WHEN 1 THEN 'sb' ELSE 'open' END, '', 0 FROM seq`, n, n); err != nil {
		t.Fatal(err)
	}
	if _, err := s.writeDB.ExecContext(ctx, `
		INSERT INTO profile_events (id, name, time, profile_id, email)
		SELECT id, event_name, ? + id * (? / ?), profile_id, email FROM delivery_reports`,
		start.UnixMicro(), year, n); err != nil {
		t.Fatal(err)
	}
	t.Logf("filled %d events in %v", n, time.Since(fill))

	end := start.Add(365 * 24 * time.Hour)
	tests := []struct {
		name string
		q    store.ProfileQuery
	}{
		{"hb, last 7 days", store.ProfileQuery{Names: []string{"hb"}, Since: end.AddDate(0, 0, -7), Until: end}},
		{"hb+sb, year", store.ProfileQuery{Names: []string{"hb", "sb"}, Since: start, Until: end}},
		{"open, last 30 days", store.ProfileQuery{Names: []string{"open"}, Since: end.AddDate(0, 0, -30), Until: end}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pages [2][][]store.ProfileMatch
			var took [2]time.Duration
			for plan, capN := range []int{1 << 62, 0} { // window first, profile first
				s.windowProbeCap = capN
				q := tt.q
				q.Limit = 1000
				t0 := time.Now()
				for {
					ms, err := s.SearchProfiles(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if len(ms) == 0 {
						break
					}
					pages[plan] = append(pages[plan], ms)
					q.AfterProfileID = ms[len(ms)-1].ProfileID
				}
				took[plan] = time.Since(t0)
			}
			s.windowProbeCap = windowProbeCap
			t0 := time.Now()
			if _, err := s.SearchProfiles(ctx, store.ProfileQuery{Names: tt.q.Names, Since: tt.q.Since, Until: tt.q.Until, Limit: 1000}); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d pages of 1000: window first %v (%v/page), profile first %v (%v/page); first page as chosen: %v",
				len(pages[0]), took[0], took[0]/time.Duration(max(1, len(pages[0]))),
				took[1], took[1]/time.Duration(max(1, len(pages[1]))), time.Since(t0))
			if !reflect.DeepEqual(pages[0], pages[1]) {
				t.Error("the two plans disagree")
			}
		})
	}
	t0 := time.Now()
	evs, err := s.ListEvents(ctx, store.EventQuery{ProfileID: "p0000042", Names: []string{"hb", "open"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ListEvents: %d events in %v", len(evs), time.Since(t0))
}
