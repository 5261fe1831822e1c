package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ibmail/ibmail/events/natstest"
	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/sqlite"
)

// requireNATS is natstest.Require under the name these tests use.
var requireNATS = natstest.Require

// testStream is a stream name and subject prefix of the test's own; the
// stream, whoever creates it, is deleted when the test ends.
type testStream struct {
	name, prefix string
	js           jetstream.JetStream
}

func newTestStream(t *testing.T, nc *nats.Conn) testStream {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ts := testStream{name: "IBMAIL_TEST_" + strings.ToUpper(id), prefix: "ibmailtest." + id + ".events", js: js}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, ts.name); err != nil && err != jetstream.ErrStreamNotFound {
			t.Errorf("delete stream %s: %v", ts.name, err)
		}
	})
	return ts
}

// streamMsg is one message as a consumer reads it.
type streamMsg struct {
	seq      uint64
	subject  string
	msgID    string
	position string
	data     string
}

// messages reads the whole stream in order.
func (ts testStream) messages(t *testing.T) []streamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := ts.js.Stream(ctx, ts.name)
	if err != nil {
		t.Fatalf("stream %s: %v", ts.name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []streamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, streamMsg{seq: m.Sequence, subject: m.Subject, msgID: m.Header.Get(jetstream.MsgIDHeader),
			position: m.Header.Get(PositionHeader), data: string(m.Data)})
	}
	return out
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ibmail.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// bounce builds an event report; msg names it, and its Params carry msg.
func bounce(msg, profile, name string, when time.Time) store.Report {
	return store.Report{
		Key:         store.ReportKey{MessageID: msg, StatusID: 5, ErrorID: 6012, DoneAt: when.Format("2006-01-02T15:04:05.000-0700")},
		ProfileID:   profile,
		Email:       profile + "@example.com",
		Outcome:     store.OutcomeEvent,
		EventName:   name,
		Rule:        "rule 6",
		EventTime:   when,
		ReceiveTime: when.Add(time.Second),
		Payload:     []byte(`{}`),
		Params:      map[string]string{"messageId": msg, "errorName": "EC_HARD_BOUNCE"},
	}
}

// ingestRound stores one body per profile group: n events spread over
// profiles, some profiles with several events in one body.
func ingestRound(t *testing.T, st store.Store, round, n int) {
	t.Helper()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	reports := make([]store.Report, n)
	names := []string{"newsletter.hardbounce", "newsletter.softbounce", "newsletter.dropped"}
	for i := range reports {
		reports[i] = bounce(fmt.Sprintf("r%d-m%03d", round, i), fmt.Sprintf("p%d", i%4), names[i%len(names)],
			t0.Add(time.Duration(round*n+i)*time.Millisecond))
	}
	if _, err := st.IngestReports(context.Background(), reports, nil); err != nil {
		t.Fatalf("IngestReports: %v", err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		<-tick.C
	}
}

// caughtUp reports whether the log holds want events and the publisher
// name has published them all.
func caughtUp(t *testing.T, st store.Store, name string, want int64) func() bool {
	return func() bool {
		ctx := context.Background()
		last, err := st.LastEventPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pos, err := st.PublishedPosition(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return last == want && pos == want
	}
}

// runInBackground runs fn until the test ends.
func runInBackground(t *testing.T, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// sequenceAll sequences the whole outbox as its own owner.
func sequenceAll(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	if held, err := st.AcquireLease(ctx, store.SequencerLease, "test-sequencer", time.Now(), time.Minute); err != nil || !held {
		t.Fatalf("AcquireLease = %v, %v", held, err)
	}
	for {
		n, err := st.SequenceEvents(ctx, "test-sequencer", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}
