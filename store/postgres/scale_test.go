package postgres_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

// TestSegmentationAtScale fills a schema with IBMAIL_POSTGRES_SCALE events
// (e.g. 1000000) over a year, as store/sqlite's test of that name does,
// then pages through segments of different shapes, logging the plan
// PostgreSQL chose for the first page and the time per page. It is how the
// choice to leave SearchProfiles' plan to the planner was checked.
func TestSegmentationAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("IBMAIL_POSTGRES_SCALE"))
	if n <= 0 {
		t.Skip("set IBMAIL_POSTGRES_SCALE to a number of events")
	}
	dsn := freshSchema(t)
	s := open(t, dsn)
	ctx := context.Background()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fill := time.Now()
	// One event per report; 10% hb, 10% sb, 80% open; 5 events per profile.
	admin(t, dsn, `INSERT INTO delivery_reports (id, message_id, status_id, error_id, done_at, connection_id,
			profile_id, email, outcome, event_name, rule, receive_time) OVERRIDING SYSTEM VALUE
		SELECT i, 'm' || i, 5, 0, '', '', 'p' || lpad(((hashint4(i)::bigint & 2147483647) % ($1 / 5))::text, 7, '0'),
			'e' || i || '@example.com', 1, CASE i % 10 WHEN 0 THEN 'hb' WHEN 1 THEN 'sb' ELSE 'open' END, '', now()
		FROM generate_series(1, $1::int) i`, n)
	admin(t, dsn, `INSERT INTO profile_events (id, name, time, profile_id, email)
		SELECT id, event_name, $1::timestamptz + id * (interval '365 days' / $2::int), profile_id, email
		FROM delivery_reports`, start, n)
	admin(t, dsn, `VACUUM ANALYZE profile_events`)
	t.Logf("filled %d events in %v", n, time.Since(fill))

	end := start.Add(365 * 24 * time.Hour)
	tests := []struct {
		name string
		q    store.ProfileQuery
	}{
		{"hb, last 7 days", store.ProfileQuery{Names: []string{"hb"}, Since: end.AddDate(0, 0, -7), Until: end}},
		{"hb+sb, year", store.ProfileQuery{Names: []string{"hb", "sb"}, Since: start, Until: end}},
		{"open, last 30 days", store.ProfileQuery{Names: []string{"open"}, Since: end.AddDate(0, 0, -30), Until: end}},
		{"any name, year", store.ProfileQuery{Since: start, Until: end}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Logf("plan of the first page:\n%s", explainSegment(t, dsn, tt.q))
			q := tt.q
			q.Limit = 1000
			pages, profiles := 0, 0
			t0 := time.Now()
			var first time.Duration
			for {
				ms, err := s.SearchProfiles(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if pages == 0 {
					first = time.Since(t0)
				}
				if len(ms) == 0 {
					break
				}
				pages++
				profiles += len(ms)
				q.AfterProfileID = ms[len(ms)-1].ProfileID
			}
			took := time.Since(t0)
			t.Logf("%d profiles in %d pages of 1000: %v, %v/page; first page %v",
				profiles, pages, took, took/time.Duration(max(1, pages)), first)
		})
	}
	t0 := time.Now()
	evs, err := s.ListEvents(ctx, store.EventQuery{ProfileID: "p0000042", Names: []string{"hb", "open"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ListEvents: %d events in %v", len(evs), time.Since(t0))
}

// explainSegment shows the plan of SearchProfiles' grouping for q's first
// page, written out with q's values as SearchProfiles sends them.
func explainSegment(t *testing.T, dsn string, q store.ProfileQuery) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	where := `profile_id > ''`
	args := []any{}
	if len(q.Names) > 0 {
		args = append(args, q.Names)
		where += ` AND name = ANY($1)`
	}
	args = append(args, q.Since, q.Until)
	where += ` AND time >= $` + strconv.Itoa(len(args)-1) + ` AND time < $` + strconv.Itoa(len(args))
	rows, err := conn.Query(ctx, `EXPLAIN (ANALYZE, COSTS OFF)
		SELECT profile_id, count(*) AS n, max(time) AS last FROM profile_events
		WHERE `+where+` GROUP BY profile_id ORDER BY profile_id LIMIT 1000`,
		append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
