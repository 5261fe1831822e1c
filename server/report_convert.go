package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/rules"
	"github.com/ibmail/ibmail/store"
)

// infobipTimeLayouts are the forms Infobip writes times in: an offset
// without a colon, which time.RFC3339 (and protobuf's Timestamp) refuse.
var infobipTimeLayouts = []string{
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05.999999999Z07:00",
}

// The bounds of a time a report can carry (doneAt, sentAt): a report whose
// time lies outside them is refused at the door, named in the answer's
// `rejected` and kept as a rejected payload, since what it would store
// could not be shown (a google.protobuf.Timestamp holds only the years 1 to
// 9999, and offsets such as -2359 push 9999-12-31 past it) or is no real
// report's: Infobip's email API dates from long after 2000, and a report
// cannot be done more than a clock's drift after it arrived.
const (
	// earliestReportTimeUnix is 2000-01-01T00:00:00Z, the earliest time
	// accepted, in Unix seconds.
	earliestReportTimeUnix = 946684800
	// latestReportTimeLead is how far after its arrival a report's time
	// may lie: one day, which no clock skew reaches.
	latestReportTimeLead = 24 * time.Hour
)

// parseInfobipTime parses a report timestamp in any form Infobip uses.
func parseInfobipTime(s string) (time.Time, error) {
	for _, layout := range infobipTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time in Infobip's format, such as 2020-09-08T05:27:59.256+0000", s)
}

// parseReportTime parses a time of a report received at received and
// checks it against the bounds above.
func parseReportTime(s string, received time.Time) (time.Time, error) {
	t, err := parseInfobipTime(s)
	if err != nil {
		return time.Time{}, err
	}
	earliest := time.Unix(earliestReportTimeUnix, 0).UTC()
	latest := received.Add(latestReportTimeLead)
	if t.Before(earliest) || t.After(latest) {
		return time.Time{}, fmt.Errorf("%q lies outside the times a report can carry: from %s to a day after it arrived (%s)",
			s, earliest.Format(time.RFC3339), latest.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// classify runs the mapping engine on a report. A report without an error
// object is a plain status report.
func classify(engine *classifier.Engine, r *ibmailv1.DeliveryReport) classifier.Result {
	e := r.GetError()
	return engine.Classify(classifier.Error{
		ID:        e.GetId(),
		Name:      e.GetName(),
		GroupID:   e.GetGroupId(),
		GroupName: e.GetGroupName(),
	})
}

// callbackFields are the keys of a JSON callbackData this server reads:
// profileId from the integration's convention, ibmailSendId from its own
// sends (see dispatch.CallbackData).
type callbackFields struct {
	ProfileID string `json:"profileId"`
	SendID    string `json:"ibmailSendId"`
}

func parseCallback(r *ibmailv1.DeliveryReport) callbackFields {
	return parseCallbackData(r.GetCallbackData())
}

// parseCallbackData reads the fields of a JSON callbackData; any other
// callbackData (a plain string, say) has none.
func parseCallbackData(data string) callbackFields {
	var f callbackFields
	if cb := strings.TrimSpace(data); strings.HasPrefix(cb, "{") {
		if fast, ok := parseCallbackFast(cb); ok {
			return fast
		}
		if json.Unmarshal([]byte(cb), &f) != nil {
			return callbackFields{}
		}
	}
	return f
}

// profileOf finds the profile a report belongs to when it is not about a
// recipient of this server's sends: the profileId in a JSON callbackData,
// else the lower-cased recipient address. Either is held to the rule of
// every profile id (checkProfileID): a report naming one that breaks it is
// refused, named and kept as a rejected payload, as one without messageId.
func profileOf(r *ibmailv1.DeliveryReport, cb callbackFields) (string, error) {
	return profileFor(cb, r.GetTo(), "to")
}

// profileFor is profileOf for any report: to is its recipient address,
// named toField in errors.
func profileFor(cb callbackFields, to, toField string) (string, error) {
	if strings.TrimSpace(cb.ProfileID) != "" {
		p, err := checkProfileID("callbackData.profileId", cb.ProfileID)
		if err != nil {
			return "", &reportFault{"callbackData.profileId", errors.New(status.Convert(err).Message())}
		}
		return p, nil
	}
	to = normalizeEmail(to)
	if to == "" {
		return "", &reportFault{toField, fmt.Errorf("%s is missing and callbackData names no profileId", toField)}
	}
	p, err := checkProfileIDUpTo(toField, to, 254)
	if err != nil {
		return "", &reportFault{toField, errors.New(status.Convert(err).Message())}
	}
	return p, nil
}

func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// eventParams are the report's facts an event keeps; empty facts are left
// out so that the activity list shows what Infobip actually said.
func eventParams(r *ibmailv1.DeliveryReport, res classifier.Result) map[string]string {
	p := make(map[string]string, 16)
	put := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	e, st := r.GetError(), r.GetStatus()
	put("messageId", r.GetMessageId())
	put("bulkId", r.GetBulkId())
	put("errorId", strconv.Itoa(int(e.GetId())))
	put("errorName", e.GetName())
	put("errorGroupId", strconv.Itoa(int(e.GetGroupId())))
	put("errorGroupName", e.GetGroupName())
	put("permanent", strconv.FormatBool(e.GetPermanent()))
	put("statusName", st.GetName())
	put("statusGroupName", st.GetGroupName())
	put("smtpResponse", r.GetSmtp().GetResponse())
	put("applicationId", r.GetApplicationId())
	put("entityId", r.GetEntityId())
	put("campaignReferenceId", r.GetCampaignReferenceId())
	put("doneAt", r.GetDoneAt())
	put("rule", res.Reason)
	return p
}

// nulField returns the JSON path of a string of a message that holds a NUL
// character, which PostgreSQL cannot store in text and no real report
// carries, or "" when none does.
func nulField(m protoreflect.Message) string {
	found := ""
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap():
			if strings.IndexByte(v.String(), 0) >= 0 {
				found = fd.JSONName()
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap():
			if sub := nulField(v.Message()); sub != "" {
				found = fd.JSONName() + "." + sub
			}
		}
		return found == ""
	})
	return found
}

// mayHoldNUL tells whether a report whose wire encoding is payload (nil:
// not encoded) may hold a NUL character. A string holding one puts a zero
// byte in the encoding, so an encoding without any rules it out, sparing
// the walk through every field (most of a small body's conversion).
func mayHoldNUL(payload []byte) bool {
	return payload == nil || bytes.IndexByte(payload, 0) >= 0
}

// reportFault is why a report is refused, with the field at fault (a JSON
// path in the report), which the answer's `rejected` names.
type reportFault struct {
	field string
	err   error
}

func (f *reportFault) Error() string { return f.err.Error() }
func (f *reportFault) Unwrap() error { return f.err }

// faultField is the field an error of toStoreReport names, if any.
func faultField(err error) string {
	var f *reportFault
	if errors.As(err, &f) {
		return f.field
	}
	return ""
}

var (
	errNUL         = errors.New("a field holds a NUL character")
	errNoMessageID = errors.New("messageId is missing")
)

// outcomeProto maps the engine's outcome to the API enum.
func outcomeProto(o classifier.Outcome) ibmailv1.ReportOutcome {
	switch o {
	case classifier.OutcomeEvent:
		return ibmailv1.ReportOutcome_REPORT_OUTCOME_EVENT
	case classifier.OutcomeNoError:
		return ibmailv1.ReportOutcome_REPORT_OUTCOME_NO_ERROR
	case classifier.OutcomeUnclassified:
		return ibmailv1.ReportOutcome_REPORT_OUTCOME_UNCLASSIFIED
	default:
		return ibmailv1.ReportOutcome_REPORT_OUTCOME_UNSPECIFIED
	}
}

// toStoreReport validates, classifies and attributes one report. The error
// names what is wrong with the report, without its position. payload, when
// not nil, is r's wire encoding, stored with the report.
func toStoreReport(snap *rules.Snapshot, r *ibmailv1.DeliveryReport, cb callbackFields, connectionID string, received time.Time, payload []byte) (store.Report, error) {
	messageID := strings.TrimSpace(r.GetMessageId())
	if messageID == "" {
		return store.Report{}, &reportFault{"messageId", errNoMessageID}
	}
	if mayHoldNUL(payload) {
		if f := nulField(r.ProtoReflect()); f != "" {
			return store.Report{}, &reportFault{f, fmt.Errorf("%w: %s", errNUL, f)}
		}
	}
	eventTime, doneAt := received, time.Time{}
	if r.GetDoneAt() != "" {
		t, err := parseReportTime(r.GetDoneAt(), received)
		if err != nil {
			return store.Report{}, &reportFault{"doneAt", fmt.Errorf("doneAt: %w", err)}
		}
		eventTime, doneAt = t, t
	}
	if r.GetSentAt() != "" {
		if _, err := parseReportTime(r.GetSentAt(), received); err != nil {
			return store.Report{}, &reportFault{"sentAt", fmt.Errorf("sentAt: %w", err)}
		}
	}
	profileID, err := profileOf(r, cb)
	if err != nil {
		return store.Report{}, err
	}
	res := classify(snap.Engine, r)
	rep := store.Report{
		RulesVersion: snap.Version,
		Key: store.ReportKey{
			MessageID: messageID,
			StatusID:  r.GetStatus().GetId(),
			ErrorID:   r.GetError().GetId(),
			DoneAt:    store.DoneAtKey(doneAt), // the instant, whatever zone it was written in
		},
		ConnectionID: connectionID,
		ProfileID:    profileID,
		Email:        normalizeEmail(r.GetTo()),
		Outcome:      store.Outcome(outcomeProto(res.Outcome)),
		Rule:         res.Reason,
		EventTime:    eventTime,
		ReceiveTime:  received,
		Payload:      payload,
	}
	if res.Outcome == classifier.OutcomeEvent {
		rep.EventName = res.Event
		rep.Params = eventParams(r, res)
	}
	return rep, nil
}
