package events

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
	"github.com/ibmail/ibmail/store/postgres/pgtest"
)

func newPublisher(t *testing.T, st store.Store, nc *nats.Conn, ts testStream, owner string, adjust func(*PublisherOptions)) *Publisher {
	t.Helper()
	opts := PublisherOptions{
		Store: st, Conn: nc, Stream: ts.name, SubjectPrefix: ts.prefix, Owner: owner,
		Poll: 10 * time.Millisecond, Batch: 16,
	}
	if adjust != nil {
		adjust(&opts)
	}
	p, err := NewPublisher(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// payloadJSON is a message body as a consumer decodes it.
type payloadJSON struct {
	Action    string            `json:"action"`
	Time      time.Time         `json:"time"`
	ProfileID string            `json:"profileId"`
	Email     string            `json:"email"`
	Params    map[string]string `json:"params"`
	ID        string            `json:"id"`
}

// checkStream requires the stream to hold every event of the log exactly
// once, as stored, on its subject, with its id as Nats-Msg-Id and its
// position, each profile's events in the order of the log.
func checkStream(t *testing.T, st store.Store, ts testStream) {
	t.Helper()
	ctx := context.Background()
	logged, err := st.ReadEventLog(ctx, store.EventLogQuery{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]store.LoggedEvent{}
	for _, e := range logged {
		want[MessageID(e.Event)] = e
	}
	msgs := ts.messages(t)
	if len(msgs) != len(logged) {
		t.Errorf("stream holds %d messages, want %d: one per event", len(msgs), len(logged))
	}
	seen := map[string]bool{}
	lastOfProfile := map[string]int64{}
	for _, m := range msgs {
		var got payloadJSON
		if err := json.Unmarshal([]byte(m.data), &got); err != nil {
			t.Fatalf("message %d: %v: %s", m.seq, err, m.data)
		}
		e, ok := want[got.ID]
		if !ok {
			t.Errorf("message %d: id %q is no logged event", m.seq, got.ID)
			continue
		}
		if seen[got.ID] {
			t.Errorf("message %d: event %s a second time", m.seq, got.ID)
		}
		seen[got.ID] = true
		wantPayload := payloadJSON{Action: e.Name, Time: e.Time, ProfileID: e.ProfileID, Email: e.Email, Params: e.Params, ID: got.ID}
		if !got.Time.Equal(wantPayload.Time) {
			t.Errorf("message %d: time %v, want %v", m.seq, got.Time, wantPayload.Time)
		}
		got.Time = wantPayload.Time
		if !reflect.DeepEqual(got, wantPayload) {
			t.Errorf("message %d = %+v, want %+v", m.seq, got, wantPayload)
		}
		if m.msgID != got.ID {
			t.Errorf("message %d: Nats-Msg-Id %q, want the event id %q", m.seq, m.msgID, got.ID)
		}
		if wantSubject := Subject(ts.prefix, e.Name); m.subject != wantSubject {
			t.Errorf("message %d: subject %q, want %q", m.seq, m.subject, wantSubject)
		}
		if m.position != strconv.FormatInt(e.Position, 10) {
			t.Errorf("message %d: position header %q, want %d", m.seq, m.position, e.Position)
		}
		if e.Position <= lastOfProfile[e.ProfileID] {
			t.Errorf("message %d: profile %s's event at position %d after its event at %d", m.seq, e.ProfileID, e.Position, lastOfProfile[e.ProfileID])
		}
		lastOfProfile[e.ProfileID] = e.Position
	}
}

// Events ingested while the sequencer and the publisher run reach the
// stream exactly as stored, once each, in order per profile; the stream is
// created by the publisher.
func TestPublisherDeliversEveryEvent(t *testing.T) {
	nc := requireNATS(t)
	ts := newTestStream(t, nc)
	st := openStore(t)
	seq := NewSequencer(SequencerOptions{Store: st, Owner: "r1", Poll: 10 * time.Millisecond})
	pub := newPublisher(t, st, nc, ts, "r1", func(o *PublisherOptions) { o.Sequenced = seq.Changed })
	runInBackground(t, seq.Run)
	runInBackground(t, pub.Run)

	for round := range 3 {
		ingestRound(t, st, round, 20)
	}
	eventually(t, 20*time.Second, "the publisher publishes the whole log", caughtUp(t, st, pub.name, 60))
	checkStream(t, st, ts)

	// What the stream holds is what the report said, end to end.
	msgs := ts.messages(t)
	var first payloadJSON
	if err := json.Unmarshal([]byte(msgs[0].data), &first); err != nil {
		t.Fatal(err)
	}
	if first.Params["messageId"] != "r0-m000" || first.Action != "newsletter.hardbounce" || first.Email != "p0@example.com" {
		t.Errorf("first message = %+v, want the first report's event", first)
	}
}

var errCrash = errors.New("crashed")

// A publisher that dies after publishing and before recording it leaves
// its lease to run out; its successor publishes the same events again, and
// JetStream drops them as duplicates: a consumer sees each event once.
func TestPublisherCrashRepublishIsDeduplicated(t *testing.T) {
	nc := requireNATS(t)
	ts := newTestStream(t, nc)
	st := openStore(t)
	ingestRound(t, st, 0, 12)
	ingestRound(t, st, 1, 12)
	sequenceAll(t, st)
	ctx := context.Background()

	const ttl, batch = 500 * time.Millisecond, 10
	crashing := newPublisher(t, st, nc, ts, "crashing", func(o *PublisherOptions) { o.Lease, o.Batch = ttl, batch })
	crashing.afterPublish = func() error { return errCrash }
	if err := crashing.step(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("step of the crashing publisher = %v, want the crash", err)
	}
	if got := len(ts.messages(t)); got != batch {
		t.Fatalf("after the crash the stream holds %d messages, want the first batch of %d", got, batch)
	}
	if pos, err := st.PublishedPosition(ctx, crashing.name); err != nil || pos != 0 {
		t.Fatalf("PublishedPosition after the crash = %d, %v; want 0: nothing recorded", pos, err)
	}

	successor := newPublisher(t, st, nc, ts, "successor", func(o *PublisherOptions) { o.Lease = ttl })
	runInBackground(t, successor.Run)
	eventually(t, 20*time.Second, "the successor takes over and publishes the whole log", caughtUp(t, st, successor.name, 24))
	checkStream(t, st, ts)

	// A consumer reading the stream from the start gets each event once.
	cons, err := ts.js.OrderedConsumer(ctx, ts.name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for m := range fetched.Messages() {
		ids = append(ids, m.Headers().Get(jetstream.MsgIDHeader))
	}
	if err := fetched.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		t.Fatal(err)
	}
	unique := slices.Clone(ids)
	slices.Sort(unique)
	if unique = slices.Compact(unique); len(ids) != 24 || len(unique) != 24 {
		t.Errorf("consumer got %d messages with %d distinct ids, want 24 and 24", len(ids), len(unique))
	}
}

// Replicas sharing a store each run a sequencer and a publisher: one at a
// time publishes, the others take over when it stops, and the stream holds
// every event once, in order per profile. On PostgreSQL each replica has a
// pool of its own on one schema, as separate processes would.
func TestPublishersOfReplicasShareTheLog(t *testing.T) {
	engines := []struct {
		name string
		// stores returns one store per replica, all on one database.
		stores func(t *testing.T, n int) []store.Store
	}{
		{"sqlite", func(t *testing.T, n int) []store.Store {
			st := openStore(t)
			return slices.Repeat([]store.Store{st}, n)
		}},
		{"postgres", func(t *testing.T, n int) []store.Store {
			dsn := pgtest.FreshSchema(t)
			out := make([]store.Store, n)
			for i := range out {
				st, err := postgres.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				out[i] = st
			}
			return out
		}},
	}
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			nc := requireNATS(t)
			ts := newTestStream(t, nc)
			stores := engine.stores(t, 3)
			type replica struct {
				cancel context.CancelFunc
				done   chan struct{}
				pub    *Publisher
			}
			start := func(st store.Store, owner string) replica {
				ctx, cancel := context.WithCancel(context.Background())
				// Short leases, so that a takeover is quick and renewals
				// happen during the test.
				const lease = 600 * time.Millisecond
				seq := NewSequencer(SequencerOptions{Store: st, Owner: owner, Poll: 10 * time.Millisecond, Lease: lease})
				pub := newPublisher(t, st, nc, ts, owner, func(o *PublisherOptions) { o.Sequenced, o.Lease = seq.Changed, lease })
				r := replica{cancel: cancel, done: make(chan struct{}), pub: pub}
				go func() {
					defer close(r.done)
					seqDone := make(chan struct{})
					go func() { defer close(seqDone); seq.Run(ctx) }() //nolint:errcheck // nil when stopped
					pub.Run(ctx)                                       //nolint:errcheck // nil when stopped
					<-seqDone
				}()
				return r
			}
			replicas := []replica{start(stores[0], "r1"), start(stores[1], "r2"), start(stores[2], "r3")}
			t.Cleanup(func() {
				for _, r := range replicas {
					r.cancel()
					<-r.done
				}
			})

			st := stores[2]
			ingestRound(t, stores[0], 0, 30)
			eventually(t, 20*time.Second, "the first round is published", caughtUp(t, st, replicas[0].pub.name, 30))
			// Whichever replica published, stopping two leaves the third.
			replicas[0].cancel()
			replicas[1].cancel()
			ingestRound(t, stores[1], 1, 30)
			ingestRound(t, stores[2], 2, 30)
			eventually(t, 20*time.Second, "the remaining replica publishes the rest", caughtUp(t, st, replicas[2].pub.name, 90))
			checkStream(t, st, ts)
		})
	}
}

// The stream is created when missing; an existing one gets the subjects it
// lacks and keeps the operator's settings.
func TestEnsureStream(t *testing.T) {
	nc := requireNATS(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, ts testStream) // makes the stream as the operator left it
		want  func(ts testStream) jetstream.StreamConfig
	}{
		{
			name: "missing",
			want: func(ts testStream) jetstream.StreamConfig {
				return jetstream.StreamConfig{Subjects: []string{ts.prefix + ".>"}, Duplicates: duplicateWindow, MaxMsgs: -1}
			},
		},
		{
			name: "without the subjects",
			setup: func(t *testing.T, ts testStream) {
				createStream(t, ts, jetstream.StreamConfig{Name: ts.name, Subjects: []string{ts.prefix + "-other.>"}, MaxMsgs: 1000, Duplicates: time.Minute})
			},
			want: func(ts testStream) jetstream.StreamConfig {
				return jetstream.StreamConfig{Subjects: []string{ts.prefix + "-other.>", ts.prefix + ".>"}, Duplicates: time.Minute, MaxMsgs: 1000}
			},
		},
		{
			name: "with the subjects",
			setup: func(t *testing.T, ts testStream) {
				createStream(t, ts, jetstream.StreamConfig{Name: ts.name, Subjects: []string{ts.prefix + ".>"}, MaxMsgs: 5})
			},
			want: func(ts testStream) jetstream.StreamConfig {
				return jetstream.StreamConfig{Subjects: []string{ts.prefix + ".>"}, Duplicates: duplicateWindow, MaxMsgs: 5}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestStream(t, nc)
			if tt.setup != nil {
				tt.setup(t, ts)
			}
			p := newPublisher(t, openStore(t), nc, ts, "r1", nil)
			ctx := context.Background()
			for i := range 2 { // and again: nothing more to do
				if err := p.EnsureStream(ctx); err != nil {
					t.Fatalf("EnsureStream #%d: %v", i+1, err)
				}
			}
			s, err := ts.js.Stream(ctx, ts.name)
			if err != nil {
				t.Fatal(err)
			}
			cfg, want := s.CachedInfo().Config, tt.want(ts)
			if !reflect.DeepEqual(cfg.Subjects, want.Subjects) || cfg.Duplicates != want.Duplicates || cfg.MaxMsgs != want.MaxMsgs {
				t.Errorf("stream config: subjects %q, duplicates %v, max msgs %d; want %q, %v, %d",
					cfg.Subjects, cfg.Duplicates, cfg.MaxMsgs, want.Subjects, want.Duplicates, want.MaxMsgs)
			}
		})
	}
}

func createStream(t *testing.T, ts testStream, cfg jetstream.StreamConfig) {
	t.Helper()
	if _, err := ts.js.CreateStream(context.Background(), cfg); err != nil {
		t.Fatalf("create stream: %v", err)
	}
}
