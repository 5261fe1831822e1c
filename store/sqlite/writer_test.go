package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// The writer inserts a transaction's reports in multi-row statements of
// rowsPerInsert rows and smaller powers of two (see chunkRows). Duplicates
// must be told apart from stored reports wherever they fall: inside one
// statement, across statements, across the requests sharing a transaction,
// and against reports stored before.
func TestMultiRowInsertDuplicates(t *testing.T) {
	// keyed makes a report of key k; delivery and tracking keys are
	// apart, and every report makes an event.
	keyed := func(k int, tracking bool) store.Report {
		r := store.Report{
			Key:       store.ReportKey{MessageID: fmt.Sprintf("m-%d", k), DoneAt: "2026-03-01T11:00:00.000+0000"},
			ProfileID: "p-multi", Outcome: store.OutcomeEvent, EventName: "hb",
			Params: map[string]string{"k": fmt.Sprint(k)},
		}
		if tracking {
			r.Kind, r.TrackingKey, r.NotificationType = store.ReportTracking, fmt.Sprintf("ev-%d", k), "OPENED"
			r.EventName = "open"
		}
		return r
	}
	body := func(tracking bool, keys ...int) []store.Report {
		out := make([]store.Report, len(keys))
		for i, k := range keys {
			out[i] = keyed(k, tracking)
		}
		return out
	}
	seq := func(from, to int) []int {
		var out []int
		for k := from; k < to; k++ {
			out = append(out, k)
		}
		return out
	}
	tests := []struct {
		name   string
		before []int // delivery keys stored by an earlier transaction
		bodies [][]store.Report
		want   [][]bool // Stored, per body
	}{
		{
			name:   "repeat inside one statement",
			bodies: [][]store.Report{body(false, 1, 2, 1, 3)},
			want:   [][]bool{{true, true, false, true}},
		},
		{
			name:   "repeat across the 64-row boundary",
			bodies: [][]store.Report{body(false, append(seq(0, 64), 5, 63, 64, 0)...)},
			want: [][]bool{append(func() []bool {
				b := make([]bool, 64)
				for i := range b {
					b[i] = true
				}
				return b
			}(), false, false, true, false)},
		},
		{
			name:   "stored before",
			before: []int{2, 4},
			bodies: [][]store.Report{body(false, 1, 2, 3, 4, 5)},
			want:   [][]bool{{true, false, true, false, true}},
		},
		{
			name:   "across requests of one transaction, and kinds apart",
			bodies: [][]store.Report{body(false, 7, 8), body(true, 7, 8), body(false, 8, 9), body(true, 7)},
			want:   [][]bool{{true, true}, {true, true}, {false, true}, {false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openInternal(t)
			ctx := context.Background()
			if len(tt.before) > 0 {
				if _, err := s.IngestReports(ctx, body(false, tt.before...), nil); err != nil {
					t.Fatal(err)
				}
			}
			// All bodies queued behind a blocked transaction share the next.
			release := blockWriter(t, s)
			results := make([]chan store.IngestResult, len(tt.bodies))
			for i, b := range tt.bodies {
				results[i] = make(chan store.IngestResult, 1)
				go func() {
					res, err := s.IngestReports(ctx, b, nil)
					if err != nil {
						t.Error(err)
					}
					results[i] <- res
				}()
				waitQueued(t, s, i+1)
			}
			before := s.w.commits.Load()
			release()
			wantEvents := len(tt.before) + 1 // the blocking body's
			for i := range tt.bodies {
				res := <-results[i]
				accepted := 0
				for j, stored := range tt.want[i] {
					if j >= len(res.Stored) || res.Stored[j] != stored {
						t.Errorf("body %d: Stored = %v, want %v", i, res.Stored, tt.want[i])
						break
					}
					if stored {
						accepted++
					}
				}
				if res.Accepted != accepted || res.Duplicates != len(tt.want[i])-accepted || res.Events != accepted {
					t.Errorf("body %d: accepted %d, duplicates %d, events %d; want %d, %d, %d",
						i, res.Accepted, res.Duplicates, res.Events, accepted, len(tt.want[i])-accepted, accepted)
				}
				wantEvents += accepted
			}
			if got := s.w.commits.Load() - before; got != 2 {
				t.Errorf("%d commits, want 2 (the blocked one and the queued bodies')", got)
			}
			// Every stored event is there once, with its outbox entry.
			var events, outbox, distinct int
			if err := s.readDB.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT id) FROM profile_events`).Scan(&events, &distinct); err != nil {
				t.Fatal(err)
			}
			if err := s.readDB.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_outbox`).Scan(&outbox); err != nil {
				t.Fatal(err)
			}
			if events != wantEvents || distinct != wantEvents || outbox != wantEvents {
				t.Errorf("events %d (distinct ids %d), outbox %d; want %d each", events, distinct, outbox, wantEvents)
			}
		})
	}
}

func TestChunkRows(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{1, 1}, {2, 2}, {3, 2}, {63, 32}, {64, 64}, {65, 64}, {1000, 64}} {
		if got := chunkRows(tt.n); got != tt.want {
			t.Errorf("chunkRows(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// A job that fails inside the shared transaction fails alone: the reports
// and the platform events queued with it are stored once, the reports'
// bounce-rate counts too (the failed run had already counted them), and
// nothing the job wrote stays.
func TestFailingJobFailsAlone(t *testing.T) {
	s := openInternal(t)
	ctx := context.Background()
	at := time.Now()
	release := blockWriter(t, s)

	counted := reports("counted", 3)
	for i := range counted {
		counted[i].Domain, counted[i].CountsAs, counted[i].ReceiveTime = "c.example", store.CountBounce, at
	}
	reportsDone := make(chan error, 1)
	go func() {
		_, err := s.IngestReports(ctx, counted, nil)
		reportsDone <- err
	}()
	waitQueued(t, s, 1)
	domainDone := make(chan error, 1)
	go func() {
		res, err := s.IngestDomainEvents(ctx, []store.DomainEvent{domainEvent("f1", "d.example", true, at)}, nil)
		if err == nil && res.Accepted != 1 {
			err = fmt.Errorf("accepted %d of 1", res.Accepted)
		}
		domainDone <- err
	}()
	waitQueued(t, s, 2)
	injected := errors.New("injected job failure")
	jobDone := make(chan error, 1)
	go func() {
		jobDone <- s.groupTx(ctx, "failing job", 1, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, insertRejectedSQL, micros(at), "", "failing job", nil); err != nil {
				return err
			}
			return injected
		})
	}()
	waitQueued(t, s, 3)
	release()

	if err := <-reportsDone; err != nil {
		t.Errorf("reports: %v", err)
	}
	if err := <-domainDone; err != nil {
		t.Errorf("domain events: %v", err)
	}
	// The writer answers an engine's failure as ErrUnavailable, naming it.
	if err := <-jobDone; err == nil || !strings.Contains(err.Error(), injected.Error()) {
		t.Errorf("job: %v, want its own error", err)
	}
	counts, err := s.DomainReportCounts(ctx, at.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := counts["c.example"]; got.Reports != 3 || got.Bounces != 3 {
		t.Errorf("counts of c.example = %+v, want 3 reports, 3 bounces", got)
	}
	if d, err := s.GetSendingDomain(ctx, "d.example"); err != nil || d.State != store.DomainBlocked {
		t.Errorf("d.example = %+v, %v; want blocked", d, err)
	}
	ps, err := s.ListRejectedPayloads(ctx, store.RejectedQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 0 {
		t.Errorf("rejected payloads = %+v, want none: the job failed", ps)
	}
}
