package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ibmail/ibmail/store/postgres/pgtest"
)

// The claim reads only the due batches' partial indexes, whether or not a
// domain is held, and never every send: see claimSQL. A NOT EXISTS would
// pass every functional test as an anti join over all sends, and slow
// every claim down as sends pile up.
func TestClaimPlan(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range []string{
		`INSERT INTO sends (id, sender_id, connection_id, campaign_id, idempotency_key, subject, recipient_count,
			create_time, from_domain)
		SELECT 's' || i, 'x', 'c', '', '', 's', 0, now(), CASE WHEN i % 10 = 0 THEN 'held.example' ELSE 'ok.example' END
		FROM generate_series(1, 20000) i`,
		`INSERT INTO send_batches (send_id, seq, bulk_id, state, attempts, next_attempt_time)
		SELECT 's' || i, 0, 'b' || i, CASE WHEN i <= 2000 THEN 1 ELSE 4 END, 0, now() - interval '1 hour'
		FROM generate_series(1, 20000) i`,
		`INSERT INTO sending_domains (domain, state, reason, reported_bounce_rate, reported_threshold, reported_scope,
			update_time) VALUES ('held.example', 1, '', 0, 0, '', now()), ('ok.example', 1, '', 0, 0, '', now())`,
		`ANALYZE`,
	} {
		pgtest.Exec(t, dsn, q)
	}
	explain := func() string {
		t.Helper()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // only read
		now := time.Now()
		rows, err := tx.Query(ctx, `EXPLAIN (ANALYZE, COSTS OFF) `+claimSQL, now, 10, "o", now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	check := func(what, plan string, want, notWant []string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(plan, w) {
				t.Errorf("%s: plan lacks %q:\n%s", what, w, plan)
			}
		}
		for _, w := range notWant {
			if strings.Contains(plan, w) {
				t.Errorf("%s: plan has %q:\n%s", what, w, plan)
			}
		}
	}
	check("nothing held", explain(),
		[]string{"send_batches_due", "send_batches_leased", "Index Scan using sends_pkey on sends s (never executed)"},
		[]string{"Seq Scan on sends", "Seq Scan on send_batches"})
	pgtest.Exec(t, dsn, `UPDATE sending_domains SET state = 4 WHERE domain = 'held.example'`)
	check("a domain held", explain(),
		[]string{"send_batches_due", "send_batches_leased", "Index Scan using sends_pkey on sends s", "Rows Removed by Filter: 200"},
		[]string{"Seq Scan on sends", "Seq Scan on send_batches", "never executed"})
}
