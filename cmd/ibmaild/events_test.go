package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ibmail/ibmail/events/natstest"
)

// TestReplicasPublishEventsToJetStream posts reports to two replicas on
// one PostgreSQL with --nats-url and reads the stream: every stored event
// arrives once, exactly as the activity list shows it.
func TestReplicasPublishEventsToJetStream(t *testing.T) {
	js, stream, prefix := testStream(t)
	var err error

	const secret = "events-webhook-secret"
	ds := startReplicas(t, 2, "--webhook-secret", secret, "--nats-url", natstest.URL(),
		"--nats-stream", stream, "--nats-subject-prefix", prefix)
	// The same 30 reports arrive at both replicas: 30 events in all.
	for _, d := range ds {
		req, _ := http.NewRequest(http.MethodPost, d.http+"/v1/webhooks/infobip/delivery-reports?token="+secret, bytes.NewReader(hardBounceBody("ev", 30)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("webhook: %v %v", resp, err)
		}
		resp.Body.Close()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var s jetstream.Stream
	waitUntil(t, "30 messages in the stream", func() bool {
		if s, err = js.Stream(ctx, stream); err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs >= 30
	})
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{prefix + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	for msg := range batch.Messages() {
		var ev map[string]any
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatalf("payload %q: %v", msg.Data(), err)
		}
		id, _ := ev["id"].(string)
		if _, dup := got[id]; dup {
			t.Errorf("event %s published twice", id)
		}
		if h := msg.Headers().Get("Nats-Msg-Id"); h != id {
			t.Errorf("Nats-Msg-Id %q, payload id %q", h, id)
		}
		if want := prefix + "." + ev["action"].(string); msg.Subject() != want {
			t.Errorf("subject %q, want %q", msg.Subject(), want)
		}
		got[id] = ev
	}
	if len(got) != 30 {
		t.Fatalf("%d distinct events in the stream, want 30", len(got))
	}
	// Each message is the event as the activity list shows it.
	for i := range 30 {
		_, list := call(t, http.MethodGet, ds[i%2].http+"/v1/profiles/"+profileOf(i)+"/events", nil)
		evs, _ := list["events"].([]any)
		if len(evs) != 1 {
			t.Fatalf("profile %s has %d events, want 1", profileOf(i), len(evs))
		}
		want := evs[0].(map[string]any)
		if msg := got[want["id"].(string)]; !reflect.DeepEqual(msg, want) {
			t.Errorf("published %v\nstored    %v", msg, want)
		}
	}
}

// testStream names a JetStream stream and subject prefix of this test's
// own, deleted when it ends, and connects to NATS (skipping without it).
func testStream(t *testing.T) (js jetstream.JetStream, stream, prefix string) {
	t.Helper()
	nc := natstest.Require(t)
	var b [5]byte
	rand.Read(b[:]) //nolint:errcheck
	suffix := hex.EncodeToString(b[:])
	stream, prefix = "IBMAIL_TEST_"+suffix, "ibmailtest."+suffix
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), stream) }) //nolint:errcheck
	return js, stream, prefix
}

func profileOf(i int) string { return fmt.Sprintf("user%d@example.com", i) }
