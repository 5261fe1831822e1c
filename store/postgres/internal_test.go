package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5/pgconn"
)

// A transaction aborted by a deadlock is run again; one that keeps being
// aborted ends as unavailable, and other failures are not retried.
func TestRunRetries(t *testing.T) {
	deadlock := &pgconn.PgError{Code: codeDeadlockDetected}
	tests := []struct {
		name      string
		failures  []error
		wantCalls int
		wantErr   error
	}{
		{"succeeds after two deadlocks", []error{deadlock, deadlock}, 3, nil},
		{"gives up", []error{deadlock, deadlock, deadlock, deadlock, deadlock}, maxAttempts, store.ErrUnavailable},
		{"no retry of a data error", []error{&pgconn.PgError{Code: "22021"}}, 1, nil},
		{"no retry of the store's answers", []error{store.ErrLeaseLost}, 1, store.ErrLeaseLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Store
			calls := 0
			err := s.run(context.Background(), "op", func() error {
				calls++
				if calls <= len(tt.failures) {
					return tt.failures[calls-1]
				}
				return nil
			})
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.name == "no retry of a data error" && (err == nil || errors.Is(err, store.ErrUnavailable)) {
				t.Errorf("data error: err = %v, want it, not ErrUnavailable", err)
			}
		})
	}
}
