package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/server"
)

// eventEnv is a whole server with an event sequencer beside it, as
// ibmaild runs them; the store shows where the log stands.
type eventEnv struct {
	*testEnv
	watcher ibmailv1.EventServiceClient
}

func newEventEnv(t *testing.T, opts []envOption) *eventEnv {
	t.Helper()
	env := newTestEnv(t, append(opts, withSequencer())...)
	return &eventEnv{testEnv: env, watcher: env.events}
}

// ingest posts reports to the webhook and waits until the sequencer has
// given their events positions. Every ingest waits so, so the log is caught
// up when the next one starts.
func (e *eventEnv) ingest(t *testing.T, reports ...string) {
	t.Helper()
	ctx := context.Background()
	before, err := e.store.LastEventPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code, got := e.postWebhook(t, body(reports...))
	if code != http.StatusOK {
		t.Fatalf("webhook: %d %v", code, got)
	}
	want := before + int64(got["events"].(float64))
	waitFor(t, "the events are sequenced", 20*time.Second, func() (bool, string) {
		last, err := e.store.LastEventPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return last == want, fmt.Sprintf("the log ends at %d, want %d", last, want)
	})
}

// hardReport, softReport and droppedReport are reports that make the named events.
func hardReport(msg, to string) string { return report(msg, to, 6012, "EC_HARD_BOUNCE", 2, "BOUNCED") }
func softReport(msg, to string) string { return report(msg, to, 6011, "EC_SOFT_BOUNCE", 2, "BOUNCED") }
func droppedReport(msg, to string) string {
	return report(msg, to, 6003, "EC_UNSUBSCRIBED_EMAIL_ADDRESS", 1, "DROPPED")
}

// watch opens a stream and waits for its headers: from then on, the start
// of the stream is fixed.
func (e *eventEnv) watch(t *testing.T, ctx context.Context, req *ibmailv1.WatchEventsRequest) grpc.ServerStreamingClient[ibmailv1.WatchEventsResponse] {
	t.Helper()
	stream, err := e.watcher.WatchEvents(ctx, req)
	if err != nil {
		t.Fatalf("WatchEvents: %v", err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatalf("WatchEvents headers: %v", err)
	}
	return stream
}

// recvEvents reads n items of a stream.
func recvEvents(t *testing.T, stream grpc.ServerStreamingClient[ibmailv1.WatchEventsResponse], n int) []*ibmailv1.WatchEventsResponse {
	t.Helper()
	out := make([]*ibmailv1.WatchEventsResponse, 0, n)
	for len(out) < n {
		item, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv after %d of %d items: %v", len(out), n, err)
		}
		out = append(out, item)
	}
	return out
}

// describeEvents names stream items by position and message id, as in the log.
func describeEvents(items []*ibmailv1.WatchEventsResponse) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = fmt.Sprintf("%d:%s", it.GetPosition(), it.GetEvent().GetParams()["messageId"])
	}
	return strings.Join(parts, " ")
}

// watchContext bounds a test's streams, so that a missing event fails the
// test instead of hanging it.
func watchContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The stream gives the log from a position, filtered by name, each event as
// the activity list shows it.
func TestWatchEventsFilterAndPosition(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			env := newEventEnv(t, engine.opts)
			env.ingest(t, hardReport("m1", "ann@example.com"), softReport("m2", "bob@example.com"), droppedReport("m3", "ann@example.com"))
			env.ingest(t, hardReport("m4", "cy@example.com"), softReport("m5", "ann@example.com"))

			tests := []struct {
				name string
				req  *ibmailv1.WatchEventsRequest
				want string
			}{
				{"everything", &ibmailv1.WatchEventsRequest{}, "1:m1 2:m2 3:m3 4:m4 5:m5"},
				{"after a position", &ibmailv1.WatchEventsRequest{AfterPosition: 3}, "4:m4 5:m5"},
				{"by name", &ibmailv1.WatchEventsRequest{EventNames: []string{"newsletter.softbounce"}}, "2:m2 5:m5"},
				{"by names, after", &ibmailv1.WatchEventsRequest{EventNames: []string{"newsletter.dropped", " Newsletter.HardBounce "}, AfterPosition: 1}, "3:m3 4:m4"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					stream := env.watch(t, watchContext(t), tt.req)
					got := recvEvents(t, stream, strings.Count(tt.want, ":"))
					if describeEvents(got) != tt.want {
						t.Errorf("stream = %s, want %s", describeEvents(got), tt.want)
					}
				})
			}

			// Each item's event is the activity list's, field for field.
			stream := env.watch(t, watchContext(t), &ibmailv1.WatchEventsRequest{})
			for _, item := range recvEvents(t, stream, 5) {
				list, err := env.people.ListProfileEvents(context.Background(), &ibmailv1.ListProfileEventsRequest{ProfileId: item.GetEvent().GetProfileId()})
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, e := range list.GetEvents() {
					found = found || proto.Equal(e, item.GetEvent())
				}
				if !found {
					t.Errorf("position %d: %v is not in the activity list %v", item.GetPosition(), item.GetEvent(), list.GetEvents())
				}
			}
		})
	}
}

// A client that reconnects with the position of the last event it handled
// gets everything after it, nothing twice and nothing skipped, including
// what was stored while it was away; events stored while it watches come
// live.
func TestWatchEventsResumeAndLive(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			env := newEventEnv(t, engine.opts)
			env.ingest(t, hardReport("a1", "ann@example.com"), hardReport("a2", "bob@example.com"), hardReport("a3", "cy@example.com"))

			ctx, cancel := context.WithCancel(watchContext(t))
			first := recvEvents(t, env.watch(t, ctx, &ibmailv1.WatchEventsRequest{}), 2)
			cancel() // the client goes away after handling two events

			env.ingest(t, hardReport("b1", "ann@example.com"), softReport("b2", "di@example.com"))
			resumed := env.watch(t, watchContext(t), &ibmailv1.WatchEventsRequest{AfterPosition: first[1].GetPosition()})
			caughtUp := recvEvents(t, resumed, 3)

			// Live: stored after the stream reached the end of the log.
			env.ingest(t, droppedReport("c1", "ed@example.com"), hardReport("c2", "ann@example.com"))
			live := recvEvents(t, resumed, 2)

			got := describeEvents(append(append(first, caughtUp...), live...))
			if want := "1:a1 2:a2 3:a3 4:b1 5:b2 6:c1 7:c2"; got != want {
				t.Errorf("first stream, then resumed = %s, want %s", got, want)
			}
		})
	}
}

// from_now skips the log so far and streams only what comes next.
func TestWatchEventsFromNow(t *testing.T) {
	env := newEventEnv(t, engines[0].opts)
	env.ingest(t, hardReport("old", "ann@example.com"))
	stream := env.watch(t, watchContext(t), &ibmailv1.WatchEventsRequest{FromNow: true, EventNames: []string{"newsletter.softbounce"}})
	env.ingest(t, hardReport("new-hard", "ann@example.com"), softReport("new-soft", "ann@example.com"))
	if got, want := describeEvents(recvEvents(t, stream, 1)), "3:new-soft"; got != want {
		t.Errorf("stream from now = %s, want %s", got, want)
	}
}

func TestWatchEventsValidated(t *testing.T) {
	env := newEventEnv(t, engines[0].opts)
	env.ingest(t, hardReport("m1", "ann@example.com"))
	tests := []struct {
		name      string
		req       *ibmailv1.WatchEventsRequest
		wantField string
	}{
		{"negative position", &ibmailv1.WatchEventsRequest{AfterPosition: -1}, "after_position"},
		{"position past the end", &ibmailv1.WatchEventsRequest{AfterPosition: 2}, "after_position"},
		{"position with from_now", &ibmailv1.WatchEventsRequest{AfterPosition: 1, FromNow: true}, "after_position"},
		{"bad event name", &ibmailv1.WatchEventsRequest{EventNames: []string{"Hard Bounce"}}, "event_names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := env.watcher.WatchEvents(watchContext(t), tt.req)
			if err == nil {
				_, err = stream.Recv()
			}
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.wantField) {
				t.Errorf("message %q does not name %s", msg, tt.wantField)
			}
		})
	}
}

// A stream never ends by itself: when the server stops, it ends with
// UNAVAILABLE, so that the client reconnects elsewhere and the server's
// graceful stop need not wait out its grace.
func TestWatchEventsEndsWhenServerStops(t *testing.T) {
	env := newEventEnv(t, engines[0].opts)
	env.ingest(t, hardReport("m1", "ann@example.com"))
	stream := env.watch(t, watchContext(t), &ibmailv1.WatchEventsRequest{})
	recvEvents(t, stream, 1)
	env.stop()
	_, err := stream.Recv()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Recv after the server stopped: err = %v, want Unavailable", err)
	}
	var reason string
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reason = info.GetReason()
		}
	}
	if reason != string(server.ReasonShuttingDown) {
		t.Errorf("reason = %q, want %s", reason, server.ReasonShuttingDown)
	}
}
