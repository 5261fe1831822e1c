package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/readcheck"
	"github.com/ibmail/ibmail/store"
)

// Message headers besides the payload.
const (
	// PositionHeader carries the event's position in the event log, the
	// after_position a WatchEvents client would resume from.
	PositionHeader = "Ibmail-Position"
	// RetractionHeader is "true" on a retraction: the message carries an
	// event sent before (same id, with its "retraction" set) that a
	// reclassification found no longer applies, and a consumer undoes what
	// it did with it. Other messages have no such header.
	RetractionHeader = "Ibmail-Retraction"
)

// RetractionMessageID is the Nats-Msg-Id of an event's retraction, which
// must not pass for a repeat of the event's own message.
func RetractionMessageID(e store.Event) string { return MessageID(e) + "-retraction" }

// ProfileEvent is a stored event as the API shows it.
func ProfileEvent(e store.Event) *ibmailv1.ProfileEvent {
	ev := &ibmailv1.ProfileEvent{
		Id:           MessageID(e),
		Action:       e.Name,
		Time:         timestamppb.New(e.Time),
		ProfileId:    e.ProfileID,
		Email:        e.Email,
		Params:       e.Params,
		RulesVersion: e.RulesVersion,
	}
	if r := e.Retraction; r != nil {
		ev.Retraction = &ibmailv1.EventRetraction{RetractTime: timestamppb.New(r.Time), Operation: r.Operation,
			RulesVersion: r.RulesVersion}
		if r.ReplacedBy != 0 {
			ev.Retraction.ReplacedBy = strconv.FormatInt(r.ReplacedBy, 10)
		}
	}
	return ev
}

// MessageID is the Nats-Msg-Id of an event's message: the event's id, as
// the API shows it. JetStream drops a message whose id it has seen within
// the stream's duplicate window, and consumers can deduplicate by it
// beyond that window (it is the payload's "id" too).
func MessageID(e store.Event) string { return strconv.FormatInt(e.ID, 10) }

// Payload is the body of an event's message: the event as the API shows it
// in the activity list, ibmail.v1.ProfileEvent in its JSON form, compact:
//
//	{"action":"newsletter.hardbounce","time":"2024-05-01T10:00:00Z",
//	 "profileId":"customer-42","email":"bob@example.com",
//	 "params":{"errorName":"EC_HARD_BOUNCE",...},"id":"17","rulesVersion":"0"}
//
// Every field is present, empty ones too ("params":{}), as in REST answers.
//
// A stored event that cannot be shown (see readcheck) gives an error
// wrapping readcheck.ErrUnreadable: it never will be, however often tried.
func Payload(e store.Event) ([]byte, error) {
	if e.Unreadable != "" {
		return nil, readcheck.Unreadable(errors.New(e.Unreadable))
	}
	ev := ProfileEvent(e)
	if err := readcheck.Message(ev); err != nil {
		return nil, readcheck.Unreadable(err)
	}
	b, err := protojson.MarshalOptions{EmitDefaultValues: true}.Marshal(ev)
	if err != nil {
		return nil, readcheck.Unreadable(err)
	}
	// protojson varies its whitespace on purpose; a message body is better
	// stable, so that the same event always makes the same bytes.
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Subject is the subject an event is published on: prefix, then the event
// name, such as ibmail.events.newsletter.hardbounce, so that a consumer can
// subscribe to the events it wants by name and wildcard. Characters that
// NATS gives a meaning to in subjects, which event names from a custom rules
// file might hold, become '_', and so do empty tokens.
func Subject(prefix, eventName string) string {
	tokens := strings.Split(eventName, ".")
	for i, tok := range tokens {
		tok = strings.Map(func(r rune) rune {
			if r <= ' ' || r == '*' || r == '>' || r == 0x7f {
				return '_'
			}
			return r
		}, tok)
		if tok == "" {
			tok = "_"
		}
		tokens[i] = tok
	}
	return prefix + "." + strings.Join(tokens, ".")
}
