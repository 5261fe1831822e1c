package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/storetest"
)

// A caller that gives up during a big CreateSend gets its context's error,
// nothing of the send is stored, and the write connection, which the
// group-commit writer shares, keeps working.
func TestCreateSendCanceled(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "ibmail.db"))
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	sn, rs, bs := storetest.BigSend("big", 50_000)
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, _, err := s.CreateSend(ctx, sn, rs, bs); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateSend canceled midway: err = %v, want context.Canceled", err)
	}
	if _, err := s.GetSend(context.Background(), "big"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("canceled send was stored: GetSend err = %v", err)
	}
	if _, err := s.IngestReports(context.Background(), body("after", 10), nil); err != nil {
		t.Errorf("IngestReports after a canceled CreateSend: %v", err)
	}
	sn, rs, bs = storetest.BigSend("small", 10)
	if _, created, err := s.CreateSend(context.Background(), sn, rs, bs); err != nil || !created {
		t.Errorf("CreateSend after a canceled one: created %v, err %v", created, err)
	}
}

// Webhook bodies keep being ingested while a big send is created; they
// wait for its transaction, and neither fails the other.
func TestIngestDuringBigSend(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "ibmail.db"))
	defer s.Close()
	var wg sync.WaitGroup
	sn, rs, bs := storetest.BigSend("big", 5000)
	wg.Go(func() {
		if _, _, err := s.CreateSend(context.Background(), sn, rs, bs); err != nil {
			t.Errorf("CreateSend: %v", err)
		}
	})
	const bodies = 10
	for i := range bodies {
		wg.Go(func() {
			if _, err := s.IngestReports(context.Background(), body(fmt.Sprint("b", i), 100), nil); err != nil {
				t.Errorf("IngestReports: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetSend(context.Background(), "big")
	if err != nil {
		t.Fatal(err)
	}
	if got.Counts[store.RecipientPending] != 5000 {
		t.Errorf("pending recipients = %d, want 5000", got.Counts[store.RecipientPending])
	}
	reports, err := s.ListReports(context.Background(), store.ReportQuery{Limit: 2 * bodies * 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != bodies*100 {
		t.Errorf("reports = %d, want %d", len(reports), bodies*100)
	}
}
