package sqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/sqlite"
	"github.com/ibmail/ibmail/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t, filepath.Join(t.TempDir(), "ibmail.db"))
	})
}

func openTemp(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

// body makes n event reports whose message ids start with prefix.
func body(prefix string, n int) []store.Report {
	reports := make([]store.Report, n)
	now := time.Now()
	for i := range reports {
		msg := fmt.Sprintf("%s-%05d", prefix, i)
		reports[i] = store.Report{
			Key:         store.ReportKey{MessageID: msg, StatusID: 5, DoneAt: "2026-03-01T11:00:00.000+0000"},
			ProfileID:   "p-" + prefix,
			Email:       "a@example.com",
			Outcome:     store.OutcomeEvent,
			EventName:   "newsletter.hardbounce",
			EventTime:   now,
			ReceiveTime: now,
			Payload:     []byte(`{"messageId":"` + msg + `"}`),
			Params:      map[string]string{"messageId": msg},
		}
	}
	return reports
}

func countReports(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM delivery_reports`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ibmail.db")
	s := openTemp(t, path)
	if _, err := s.IngestReports(context.Background(), body("a", 10), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, path)
	defer s.Close()
	res, err := s.IngestReports(context.Background(), body("a", 10), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicates != 10 {
		t.Errorf("after reopen, duplicates = %d, want 10 (the reports survived)", res.Duplicates)
	}
	evs, err := s.ListEvents(context.Background(), store.EventQuery{ProfileID: "p-a", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 10 {
		t.Errorf("after reopen, events = %d, want 10", len(evs))
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var versions []int
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if len(versions) == 0 || versions[0] != 1 {
		t.Errorf("schema_migrations versions = %v, want one row per migration from 1", versions)
	}
	for i := 1; i < len(versions); i++ {
		if versions[i] <= versions[i-1] {
			t.Errorf("schema_migrations versions = %v, want each once", versions)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ibmail.db")
	openTemp(t, path).Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := sqlite.Open(context.Background(), path); err == nil {
		s.Close()
		t.Fatal("Open of a database from a newer schema: no error")
	}
}

// Close must let queued writes commit: every ingest that returned nil is
// on disk after reopening.
func TestCloseDrainsPendingWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ibmail.db")
	s := openTemp(t, path)
	const callers = 20
	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			_, err := s.IngestReports(context.Background(), body(fmt.Sprint("c", i), 50), nil)
			errs <- err
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ok := 0
	for range callers {
		if err := <-errs; err == nil {
			ok++
		}
	}
	if ok == 0 {
		t.Fatal("no ingest succeeded before Close")
	}
	if got, want := countReports(t, path), ok*50; got != want {
		t.Errorf("reports on disk = %d, want %d (%d successful ingests)", got, want, ok)
	}
}

const childEnv = "IBMAIL_SQLITE_KILL_CHILD_DB"

// TestSurvivesKill ingests in a child process, which says "committed" after
// each IngestReports returns, kills it with SIGKILL mid-stream and checks
// that every acknowledged body is in the database.
func TestSurvivesKill(t *testing.T) {
	if path := os.Getenv(childEnv); path != "" {
		killChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "ibmail.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "committed ") {
			acked++
			if acked == 5 {
				break
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < 5 {
		t.Fatalf("child acknowledged %d bodies before it ended, want 5", acked)
	}

	s := openTemp(t, path)
	defer s.Close()
	for i := range acked {
		res, err := s.IngestReports(context.Background(), body(fmt.Sprint("k", i), 100), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Duplicates != 100 {
			t.Errorf("body %d: %d of 100 acknowledged reports survived the kill", i, res.Duplicates)
		}
	}
}

// killChild ingests bodies until it is killed; it never returns normally.
func killChild(path string) {
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		if _, err := s.IngestReports(context.Background(), body(fmt.Sprint("k", i), 100), nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("committed %d\n", i)
	}
}
