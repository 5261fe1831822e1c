package readcheck

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/metrics"
)

func TestMessage(t *testing.T) {
	manyParams := map[string]string{}
	for i := range MaxMapEntries + 1 {
		manyParams[strings.Repeat("k", i%50)+string(rune('a'+i%26))+strings.Repeat("x", i/50)] = "v"
	}
	tests := []struct {
		name    string
		msg     proto.Message
		wantErr string // "" when the message can be shown
	}{
		{"good", &ibmailv1.ProfileEvent{Id: "1", ProfileId: "ann", Time: timestamppb.New(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)), Params: map[string]string{"a": "b"}}, ""},
		{"time after 9999", &ibmailv1.ProfileEvent{Time: timestamppb.New(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))}, "time: "},
		{"time before year 1", &ibmailv1.ProfileEvent{Time: timestamppb.New(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC))}, "time: "},
		{"invalid UTF-8", &ibmailv1.ProfileEvent{Email: "a\xffb"}, "email: is not valid UTF-8"},
		{"NUL", &ibmailv1.ProfileEvent{ProfileId: "a\x00b"}, "profile_id: holds a NUL"},
		{"long string", &ibmailv1.ProfileEvent{ProfileId: strings.Repeat("p", MaxStringBytes+1)}, "profile_id: holds"},
		{"bad map value", &ibmailv1.ProfileEvent{Params: map[string]string{"k": "\xff"}}, `params["k"]: is not valid UTF-8`},
		{"bad map key", &ibmailv1.ProfileEvent{Params: map[string]string{"\xff": "v"}}, "params key: is not valid UTF-8"},
		{"many entries", &ibmailv1.ProfileEvent{Params: manyParams}, "params: has 1001 entries"},
		{"nested", &ibmailv1.WatchEventsResponse{Event: &ibmailv1.ProfileEvent{Action: "\xff"}}, "event.action: "},
		{"repeated", &ibmailv1.ListProfileEventsResponse{Events: []*ibmailv1.ProfileEvent{{}, {Email: "\xff"}}}, "events[1].email: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Message(tt.msg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Message = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Message = %v, want an error with %q", err, tt.wantErr)
			}
			// What Message passes, proto and protojson can marshal.
			if err == nil {
				if _, err := proto.Marshal(tt.msg); err != nil {
					t.Errorf("passed, but proto.Marshal: %v", err)
				}
			}
		})
	}
}

// Every skip is counted; a row is logged once, however often it is met.
func TestSkipperLogsOncePerRowAndCountsEverySkip(t *testing.T) {
	var logs strings.Builder
	s := NewSkipper("test_row", slogTo(&logs))
	counter := metrics.UnreadableRows.WithLabelValues("test_row")
	before := testutil.ToFloat64(counter)
	for range 3 {
		s.Skip(context.Background(), "7", errTest)
		s.Skip(context.Background(), strings.Repeat("x", 1<<20), errTest)
	}
	if got := testutil.ToFloat64(counter) - before; got != 6 {
		t.Errorf("counted %v skips, want 6", got)
	}
	if n := strings.Count(logs.String(), "stored row cannot be shown"); n != 2 {
		t.Errorf("%d log lines, want 2 (one per row):\n%s", n, logs.String())
	}
	if len(logs.String()) > 10000 {
		t.Errorf("the log holds %d bytes: a megabyte id must not be logged whole", len(logs.String()))
	}
	// Beyond its bound, the set forgets the oldest rows rather than grow.
	for i := range seenCap + 10 {
		s.remember(strings.Repeat("y", i))
	}
	if len(s.seen) > seenCap || len(s.ring) > seenCap {
		t.Errorf("remembers %d rows, want at most %d", len(s.seen), seenCap)
	}
}

var errTest = errors.New("test problem")

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
