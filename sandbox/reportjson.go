package sandbox

import (
	"encoding/json"
	"slices"

	"github.com/ibmail/ibmail/infobip"
)

// encode writes the {"results":[...]} body of a job. Every report of a bulk
// shares most fields and every outcome its status part, so those are
// encoded once per job from report's own values and spliced: encoding each
// report by reflection was the largest cost of the sandbox.
func (q *queue) encode(j *job) []byte {
	b := j.b
	first := j.lo
	if j.picks != nil {
		first = j.picks[0]
	}
	shared := inner(marshal(sharedPartOf(q.s.report(b, first))))
	parts := make(map[*Outcome][]byte, len(outcomes)+1)
	out := make([]byte, 0, 1024)
	out = append(out, `{"results":[`...)
	add := func(k, i int) {
		m := &b.messages[i]
		part, ok := parts[m.outcome]
		if !ok {
			part = inner(marshal(outcomePartOf(q.s.report(b, i))))
			parts[m.outcome] = part
		}
		if k > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"messageId":`...)
		out = appendJSONString(out, m.id)
		out = append(out, `,"to":`...)
		out = appendJSONString(out, m.to)
		out = append(out, ',')
		out = append(out, shared...)
		out = append(out, ',')
		out = append(out, part...)
		out = append(out, '}')
		if k == 0 {
			// The first report tells the size of the rest.
			out = slices.Grow(out, (len(out)+64)*(j.size()-1))
		}
	}
	if j.picks != nil {
		for k, i := range j.picks {
			add(k, i)
		}
	} else {
		for i := j.lo; i < j.hi; i++ {
			add(i-j.lo, i)
		}
	}
	return append(out, "]}"...)
}

// sharedPart holds the fields that are the same for every report of a bulk.
type sharedPart struct {
	BulkID              string         `json:"bulkId,omitempty"`
	SentAt              infobip.Time   `json:"sentAt"`
	DoneAt              infobip.Time   `json:"doneAt"`
	SMSCount            int            `json:"smsCount"`
	Price               *infobip.Price `json:"price,omitempty"`
	CallbackData        string         `json:"callbackData,omitempty"`
	ApplicationID       string         `json:"applicationId,omitempty"`
	EntityID            string         `json:"entityId,omitempty"`
	CampaignReferenceID string         `json:"campaignReferenceId,omitempty"`
}

func sharedPartOf(r infobip.DeliveryReport) sharedPart {
	return sharedPart{r.BulkID, r.SentAt, r.DoneAt, r.SMSCount, r.Price, r.CallbackData, r.ApplicationID, r.EntityID, r.CampaignReferenceID}
}

// outcomePart holds the fields that follow from a recipient's outcome.
type outcomePart struct {
	Status             infobip.Status    `json:"status"`
	Error              infobip.ErrorInfo `json:"error"`
	AttemptCount       int               `json:"attemptCount,omitempty"`
	TimeToFirstAttempt int64             `json:"timeToFirstAttempt,omitempty"`
	SendingIP          string            `json:"sendingIp,omitempty"`
	SMTP               *infobip.SMTPInfo `json:"smtp,omitempty"`
}

func outcomePartOf(r infobip.DeliveryReport) outcomePart {
	return outcomePart{r.Status, r.Error, r.AttemptCount, r.TimeToFirstAttempt, r.SendingIP, r.SMTP}
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("sandbox: report fragment: " + err.Error()) // only fixed types reach here
	}
	return b
}

// inner strips the braces of a marshalled object.
func inner(obj []byte) []byte { return obj[1 : len(obj)-1] }
