package postgres

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres/pgtest"
	"github.com/ibmail/ibmail/store/storetest"
)

// The COPY path and the single statement store the same rows, ids
// included, from the same calls: the reports, their events and outbox
// entries, their recipients' last events, the suppressions, the bounce-rate
// counts and the rejected payloads; and a call repeating stored reports
// falls back to the statement, storing only the new ones. Ids are left out
// (rows in id order all the same): a fallback loses the ids its COPY drew,
// as the statement loses those of its duplicates.
func TestIngestPathsAgree(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 11, 0, 0, 123456789, time.UTC)
	delivery := func(i int) store.Report {
		r := store.Report{
			Key:          store.ReportKey{MessageID: fmt.Sprintf("m%03d", i), StatusID: 5, ErrorID: int32(i % 3), DoneAt: "2026-03-01T11:00:00.256+0100"},
			ConnectionID: "c", ProfileID: fmt.Sprintf("p%d", i%4), Email: fmt.Sprintf("e%d@x.example", i%4),
			Outcome: store.OutcomeNoError, ReceiveTime: now, EventTime: now.Add(time.Duration(i) * time.Second),
			Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)), Domain: "x.example", CountsAs: store.CountSent,
		}
		if i%2 == 0 {
			r.Outcome, r.EventName, r.Rule, r.CountsAs = store.OutcomeEvent, "newsletter.hardbounce", "hard", store.CountBounce
			r.Params = map[string]string{"a": "1", "quote\"d": "é\n", "n": fmt.Sprint(i)}
			r.Suppress = i%4 == 0
			r.Recipient = &store.RecipientRef{SendID: "send", Seq: i % 5}
		}
		if i%7 == 0 {
			r.Payload = nil
		}
		return r
	}
	tracking := func(i int) store.Report {
		r := delivery(i)
		r.Kind, r.TrackingKey, r.NotificationType = store.ReportTracking, fmt.Sprintf("ev%03d", i), "OPENED"
		return r
	}
	rejected := []store.RejectedPayload{{ReceiveTime: now, ContentType: "text/plain", Reason: "bad", Body: []byte("x")}}
	calls := []struct {
		reports  []store.Report
		rejected []store.RejectedPayload
	}{
		{reports: []store.Report{delivery(0), delivery(1), delivery(2), delivery(3), delivery(2)}, rejected: rejected},
		{reports: []store.Report{delivery(3), delivery(4), delivery(5), delivery(6)}}, // 3 is stored: the fallback
		{reports: []store.Report{tracking(0), tracking(1), tracking(2)}},
		{reports: []store.Report{tracking(2), tracking(7), tracking(8)}},
		{rejected: rejected},
	}
	dump := func(s *Store) string {
		t.Helper()
		var b strings.Builder
		for _, q := range []string{
			`SELECT d::text FROM delivery_reports d ORDER BY id`,
			`SELECT t::text FROM tracking_events t ORDER BY id`,
			`SELECT e::text FROM profile_events e ORDER BY id`,
			`SELECT o::text FROM event_outbox o ORDER BY event_id`,
			`SELECT r::text FROM send_recipients r ORDER BY seq`,
			`SELECT x::text FROM suppressions x ORDER BY email`,
			`SELECT (bucket, domain, sum(reports), sum(bounces))::text FROM domain_report_counts GROUP BY bucket, domain ORDER BY 1`,
			`SELECT p::text FROM rejected_payloads p ORDER BY id`,
		} {
			rows, err := s.pool.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				if i := strings.IndexByte(line, ','); strings.HasPrefix(q, "SELECT d::") || strings.HasPrefix(q, "SELECT t::") ||
					strings.HasPrefix(q, "SELECT e::") || strings.HasPrefix(q, "SELECT p::") {
					line = line[i:] // the id
				}
				if strings.HasPrefix(q, "SELECT o::") {
					line = "(outbox entry)"
				}
				b.WriteString(line + "\n")
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			b.WriteString("--\n")
		}
		return b.String()
	}
	run := func(forceStatement bool) ([]store.IngestResult, string) {
		t.Helper()
		s, err := Open(ctx, pgtest.FreshSchema(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.copyMin = 1 // every call by COPY
		if forceStatement {
			s.copyMin = math.MaxInt
		}
		sn, rs, bs := storetest.BigSend("send", 5)
		if _, _, err := s.CreateSend(ctx, sn, rs, bs); err != nil {
			t.Fatal(err)
		}
		var results []store.IngestResult
		for _, c := range calls {
			res, err := s.IngestReports(ctx, c.reports, c.rejected)
			if err != nil {
				t.Fatal(err)
			}
			// The ids differ by path (a COPY that meets a duplicate
			// loses the ids it drew); the dump compares the rows.
			for i, stored := range res.Stored {
				if (res.IDs[i] != 0) != stored {
					t.Errorf("report %d: stored %v with id %d", i, stored, res.IDs[i])
				}
			}
			res.IDs = nil
			results = append(results, res)
		}
		return results, dump(s)
	}
	gotRes, got := run(false)
	wantRes, want := run(true)
	if fmt.Sprint(gotRes) != fmt.Sprint(wantRes) {
		t.Errorf("results by COPY:\n%v\nby the statement:\n%v", gotRes, wantRes)
	}
	if got != want {
		t.Errorf("rows by COPY:\n%s\nby the statement:\n%s", got, want)
	}
	if !strings.Contains(got, "m006") || !strings.Contains(got, "ev008") {
		t.Errorf("rows lack the reports after the fallbacks:\n%s", got)
	}
}

// The COPY data of a row is PostgreSQL's binary format, whatever the size
// of the chunks COPY reads it in.
func TestCopyStreamChunks(t *testing.T) {
	write := func(c *copyRows, i int) {
		c.row(2)
		c.int4(int32(i))
		c.text(strings.Repeat("x", i))
	}
	var whole copyRows
	whole.b = append(whole.b, copyHeader...)
	for i := range 50 {
		write(&whole, i)
	}
	want := string(whole.done())
	for _, chunk := range []int{1, 7, 64, 1 << 16} {
		s := newCopyStream(50, write)
		var got []byte
		buf := make([]byte, chunk)
		for {
			n, err := s.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if string(got) != want {
			t.Errorf("chunks of %d: %d bytes, want %d", chunk, len(got), len(want))
		}
	}
}
