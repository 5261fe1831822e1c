package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// messageSendParams are the params of the MessageSendEvent of recipient
// seq of fixture f, accepted with accepted's message id.
func messageSendParams(f sendFixture, messageID string) map[string]string {
	return map[string]string{
		"title": f.send.Subject, "sendId": f.send.ID, "campaignId": f.send.CampaignID,
		"senderId": f.send.SenderID, "connectionId": f.send.ConnectionID, "messageId": messageID,
	}
}

// eventsNamed returns the profile's events of one name, newest first.
func eventsNamed(t *testing.T, s store.Store, profile, name string) []store.Event {
	t.Helper()
	return listEvents(t, s, store.EventQuery{ProfileID: profile, Names: []string{name}, Limit: 100})
}

// CompleteBatch gives each recipient it accepts a message.send event, in
// the outbox like every event, which becomes its last event unless a
// report got there first, until any report comes; nothing of it stays when
// CompleteBatch fails.
func testCompleteBatchMessageSend(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
	f := newSend("s", 10, 4) // batch 0 = 0-3, batch 1 = 5-8, 4 and 9 suppressed
	createSend(t, s, f)
	// Recipient 1's delivery report beat Infobip's answer.
	early := event("early", f.recipients[1].ProfileID, f.recipients[1].Email, "newsletter.delivered", time.Now().Add(-time.Hour).Truncate(time.Microsecond))
	early.Recipient = &store.RecipientRef{SendID: "s", Seq: 1}
	ingest(t, s, []store.Report{early}, nil)
	claim(t, s, "d", at(0), time.Minute, 10)

	clock := clockAround(func() {
		completeBatch(t, s, "d", "s", 0, []store.RecipientOutcome{
			{Seq: 0, State: store.RecipientAccepted, MessageID: "m0"},
			{Seq: 1, State: store.RecipientAccepted, MessageID: "m1"},
			{Seq: 2, State: store.RecipientRejected, Reason: "invalid address"},
			{Seq: 3, State: store.RecipientFailed, Reason: "domain has no MX"},
		})
	})
	for _, tt := range []struct {
		seq       int
		messageID string // "": no event
	}{{0, "m0"}, {1, "m1"}, {2, ""}, {3, ""}} {
		r := f.recipients[tt.seq]
		evs := eventsNamed(t, s, r.ProfileID, store.MessageSendEvent)
		if tt.messageID == "" {
			if len(evs) != 0 {
				t.Errorf("recipient %d, not accepted, has message.send events %+v", tt.seq, evs)
			}
			continue
		}
		if len(evs) != 1 {
			t.Fatalf("recipient %d: %d message.send events, want 1", tt.seq, len(evs))
		}
		e := evs[0]
		clock.holds(t, fmt.Sprintf("recipient %d message.send Time", tt.seq), e.Time)
		if e.ID <= 0 || e.ProfileID != r.ProfileID || e.Email != r.Email || !reflect.DeepEqual(e.Params, messageSendParams(f, tt.messageID)) {
			t.Errorf("recipient %d message.send = %+v, want %s %s %v", tt.seq, e, r.ProfileID, r.Email, messageSendParams(f, tt.messageID))
		}
	}

	rs := listRecipients(t, s, store.RecipientQuery{SendID: "s", AfterSeq: -1, Limit: 2})
	send0 := eventsNamed(t, s, f.recipients[0].ProfileID, store.MessageSendEvent)
	if rs[0].LastEvent != store.MessageSendEvent || len(send0) != 1 || !rs[0].LastEventTime.Equal(send0[0].Time) {
		t.Errorf("recipient 0 last event = %s at %v, want its message.send", rs[0].LastEvent, rs[0].LastEventTime)
	}
	if rs[1].LastEvent != "newsletter.delivered" || !rs[1].LastEventTime.Equal(early.EventTime) {
		t.Errorf("recipient 1 last event = %s at %v, want the report that came first", rs[1].LastEvent, rs[1].LastEventTime)
	}

	// Any report replaces message.send as the last event, even one whose
	// time is before the store's clock at CompleteBatch (Infobip's doneAt
	// can be): every report follows the send. Between reports, the newer
	// time wins as ever.
	about0 := func(msg, name string, when time.Time) store.Report {
		r := event(msg, f.recipients[0].ProfileID, f.recipients[0].Email, name, when.Truncate(time.Microsecond))
		r.Recipient = &store.RecipientRef{SendID: "s", Seq: 0}
		return r
	}
	for _, st := range []struct {
		report store.Report
		want   string
	}{
		{about0("bounced", "newsletter.hardbounce", clock.before.Add(-time.Minute)), "newsletter.hardbounce"},
		{about0("older", "newsletter.delivered", clock.before.Add(-time.Hour)), "newsletter.hardbounce"},
		{about0("later", "newsletter.open", clock.after.Add(time.Hour)), "newsletter.open"},
	} {
		ingest(t, s, []store.Report{st.report}, nil)
		r := listRecipients(t, s, store.RecipientQuery{SendID: "s", AfterSeq: -1, Limit: 1})[0]
		if r.LastEvent != st.want || (st.want == st.report.EventName && !r.LastEventTime.Equal(st.report.EventTime)) {
			t.Errorf("after report %s, recipient 0 last event = %s at %v, want %s", st.report.Key.MessageID, r.LastEvent, r.LastEventTime, st.want)
		}
	}

	// Refused completions of batch 1 leave no event.
	if err := s.CompleteBatch(ctx, "someone-else", "s", 1, accepted("s", f.inBatch(1))); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("CompleteBatch without the lease: err = %v, want ErrLeaseLost", err)
	}
	if err := s.CompleteBatch(ctx, "d", "s", 1, accepted("s", f.inBatch(1)[:2])); err == nil {
		t.Error("CompleteBatch leaving recipients pending: no error")
	}
	for _, seq := range f.inBatch(1) {
		if evs := eventsNamed(t, s, f.recipients[seq].ProfileID, store.MessageSendEvent); len(evs) != 0 {
			t.Errorf("recipient %d has message.send events after refused completions: %+v", seq, evs)
		}
	}
	completeBatch(t, s, "d", "s", 1, accepted("s", f.inBatch(1)))

	// Each message.send went through the outbox, with the reports' events.
	sequenceAll(t, s, testSequencer, 100)
	logged := readLog(t, s, store.EventLogQuery{Names: []string{store.MessageSendEvent}, Limit: 100})
	var profiles []string
	for _, e := range logged {
		profiles = append(profiles, e.ProfileID)
	}
	want := []string{f.recipients[0].ProfileID, f.recipients[1].ProfileID}
	for _, seq := range f.inBatch(1) {
		want = append(want, f.recipients[seq].ProfileID)
	}
	if !reflect.DeepEqual(profiles, want) {
		t.Errorf("message.send events in the log are of %q, want %q", profiles, want)
	}
	if all := readLog(t, s, store.EventLogQuery{Limit: 100}); len(all) != len(want)+4 {
		t.Errorf("log = %d events, want %d message.send and the 4 reports'", len(all), len(want))
	}
}

// A batch of a thousand accepted recipients gets a thousand message.send
// events, each its own id.
func testCompleteBatchMessageSendLarge(t *testing.T, open opener) {
	s := open(t)
	acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
	f := newSend("big", 1250, 1000) // 1000 pending, in batch 0
	createSend(t, s, f)
	cs := claim(t, s, "d", at(0), time.Minute, 1)
	if len(cs) != 1 || len(cs[0].Recipients) != 1000 {
		t.Fatalf("claimed %d batches, want one of 1000 recipients", len(cs))
	}
	completeBatch(t, s, "d", "big", 0, accepted("big", seqs(cs[0].Recipients)))
	if n := sequenceAll(t, s, testSequencer, 5000); n != 1000 {
		t.Errorf("sequenced %d events, want 1000", n)
	}
	logged := readLog(t, s, store.EventLogQuery{Limit: 5000})
	ids := map[int64]bool{}
	for _, e := range logged {
		ids[e.ID] = true
	}
	if len(ids) != 1000 {
		t.Errorf("%d distinct ids among %d events, want 1000", len(ids), len(logged))
	}
	r := f.recipients[1248] // the last pending one
	evs := eventsNamed(t, s, r.ProfileID, store.MessageSendEvent)
	if len(evs) != 1 || !reflect.DeepEqual(evs[0].Params, messageSendParams(f, fmt.Sprintf("big-m%d", r.Seq))) {
		t.Errorf("events of %s = %+v, want one message.send", r.ProfileID, evs)
	}
}
