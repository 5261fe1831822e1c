package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ibmail/ibmail/events/natstest"
)

// TestReclassificationReachesJetStream runs two replicas on one PostgreSQL
// with --nats-url: a rule change made through one is in force on the
// other, a reclassification started on that other retracts the hard
// bounces the new rule calls soft bounces, and JetStream consumers see the
// original events, their retractions (header Ibmail-Retraction: true, a
// Nats-Msg-Id of their own) and the events that replace them.
func TestReclassificationReachesJetStream(t *testing.T) {
	js, stream, prefix := testStream(t)

	const secret = "reclassify-webhook-secret"
	ds := startReplicas(t, 2, "--webhook-secret", secret, "--nats-url", natstest.URL(),
		"--nats-stream", stream, "--nats-subject-prefix", prefix)
	const n = 5
	if code, resp := call(t, http.MethodPost, ds[0].http+"/v1/webhooks/infobip/delivery-reports?token="+secret, json.RawMessage(hardBounceBody("rc", n))); code != 200 {
		t.Fatalf("webhook = %d %v", code, resp)
	}

	_, cur := call(t, http.MethodGet, ds[0].http+"/v1/rules", nil)
	set := cur["rules"].(map[string]any)["rules"].(map[string]any)
	set["rules"] = append([]any{map[string]any{"groupId": 2, "groupName": "BOUNCED", "errorNames": []any{"EC_HARD_BOUNCE"},
		"event": "newsletter.softbounce"}}, set["rules"].([]any)...)
	if code, resp := call(t, http.MethodPut, ds[0].http+"/v1/rules", map[string]any{"rules": set, "comment": "6012 is soft now"}); code != 200 {
		t.Fatalf("PUT /v1/rules = %d %v", code, resp)
	}
	waitUntil(t, "replica 1 to take up version 1", func() bool {
		_, got := call(t, http.MethodGet, ds[1].http+"/v1/rules", nil)
		return got["rules"].(map[string]any)["version"] == "1"
	})
	code, started := call(t, http.MethodPost, ds[1].http+"/v1/deliveryReports:reclassify", map[string]any{"requestId": "rc-1"})
	if code != 200 {
		t.Fatalf("reclassify = %d %v", code, started)
	}
	name := started["operation"].(map[string]any)["name"].(string)
	var op map[string]any
	waitUntil(t, name+" to finish", func() bool {
		_, got := call(t, http.MethodGet, ds[0].http+"/v1/"+name, nil)
		op, _ = got["operation"].(map[string]any)
		return op["done"] == true
	})
	counts := op["reclassifyResult"].(map[string]any)["counts"].(map[string]any)
	if counts["changed"] != "5" || counts["eventsRetracted"] != "5" || counts["eventsAdded"] != "5" || counts["suppressionsLifted"] != "5" {
		t.Errorf("counts = %v, want 5 changed, retracted, added and lifted", counts)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		s   jetstream.Stream
		err error
	)
	waitUntil(t, "15 messages in the stream", func() bool {
		if s, err = js.Stream(ctx, stream); err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs >= 3*n
	})
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{prefix + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	retracted := map[string]bool{}
	for msg := range batch.Messages() {
		var ev map[string]any
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatalf("payload %q: %v", msg.Data(), err)
		}
		id := ev["id"].(string)
		kind := "event"
		if msg.Headers().Get("Ibmail-Retraction") == "true" {
			kind = "retraction"
			r, _ := ev["retraction"].(map[string]any)
			if r["operation"] != name || r["replacedBy"] == "" || msg.Headers().Get("Nats-Msg-Id") != id+"-retraction" {
				t.Errorf("retraction %s: headers %v, payload %v", id, msg.Headers(), ev)
			}
			retracted[id] = true
		} else if retracted[id] {
			t.Errorf("event %s published again after its retraction", id)
		}
		if want := prefix + "." + ev["action"].(string); msg.Subject() != want {
			t.Errorf("subject %q, want %q", msg.Subject(), want)
		}
		got = append(got, kind+" "+ev["action"].(string))
	}
	want := slices.Repeat([]string{"event newsletter.hardbounce"}, n)
	for range n {
		want = append(want, "retraction newsletter.hardbounce", "event newsletter.softbounce")
	}
	if strings.Join(got[:n], ",") != strings.Join(want[:n], ",") || !sameCounts(got[n:], want[n:]) {
		t.Errorf("the stream holds\n%q\nwant\n%q", got, want)
	}
}

func sameCounts(a, b []string) bool {
	as, bs := slices.Clone(a), slices.Clone(b)
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(as, bs)
}
