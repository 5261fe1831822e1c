package server

import (
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
	"github.com/ibmail/ibmail/store"
)

// infobipTimeLayouts are the forms Infobip writes times in: an offset
// without a colon, which time.RFC3339 (and protobuf's Timestamp) refuse.
var infobipTimeLayouts = []string{
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05.999999999Z07:00",
}

// parseInfobipTime parses a report timestamp in any form Infobip uses.
func parseInfobipTime(s string) (time.Time, error) {
	for _, layout := range infobipTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time in Infobip's format, such as 2020-09-08T05:27:59.256+0000", s)
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
	var f callbackFields
	if cb := strings.TrimSpace(r.GetCallbackData()); strings.HasPrefix(cb, "{") {
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
	if strings.TrimSpace(cb.ProfileID) != "" {
		p, err := checkProfileID("callbackData.profileId", cb.ProfileID)
		if err != nil {
			return "", errors.New(status.Convert(err).Message())
		}
		return p, nil
	}
	to := normalizeEmail(r.GetTo())
	if to == "" {
		return "", errNoProfile
	}
	p, err := checkProfileIDUpTo("to", to, 254)
	if err != nil {
		return "", errors.New(status.Convert(err).Message())
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

// hasNUL reports whether any string of a message holds a NUL character,
// which PostgreSQL cannot store in text and no real report carries.
func hasNUL(m protoreflect.Message) bool {
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap():
			found = strings.IndexByte(v.String(), 0) >= 0
		case fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap():
			found = hasNUL(v.Message())
		}
		return !found
	})
	return found
}

var (
	errNUL         = errors.New("a field holds a NUL character")
	errNoMessageID = errors.New("messageId is missing")
	errNoProfile   = errors.New("to is missing and callbackData names no profileId")
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
// names what is wrong with the report, without its position.
func toStoreReport(engine *classifier.Engine, r *ibmailv1.DeliveryReport, cb callbackFields, connectionID string, received time.Time, payload []byte) (store.Report, error) {
	messageID := strings.TrimSpace(r.GetMessageId())
	if messageID == "" {
		return store.Report{}, errNoMessageID
	}
	if hasNUL(r.ProtoReflect()) {
		return store.Report{}, errNUL
	}
	eventTime := received
	if r.GetDoneAt() != "" {
		t, err := parseInfobipTime(r.GetDoneAt())
		if err != nil {
			return store.Report{}, fmt.Errorf("doneAt: %w", err)
		}
		eventTime = t
	}
	profileID, err := profileOf(r, cb)
	if err != nil {
		return store.Report{}, err
	}
	res := classify(engine, r)
	rep := store.Report{
		Key: store.ReportKey{
			MessageID: messageID,
			StatusID:  r.GetStatus().GetId(),
			ErrorID:   r.GetError().GetId(),
			DoneAt:    r.GetDoneAt(),
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
