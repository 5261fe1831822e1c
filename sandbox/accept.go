package sandbox

import (
	"encoding/json"
	"net/http"
	"unicode/utf8"

	"github.com/ibmail/ibmail/infobip"
)

// sendingIP is where the sandbox claims to send from (TEST-NET-1).
const sendingIP = "192.0.2.10"

// accept records a valid send, queues its reports, tracking and platform
// events, and builds Infobip's 200.
func (s *Sandbox) accept(r *http.Request, f *sendForm, fs *faultState) answer {
	now := s.now().UTC() // Infobip writes +0000
	b := &bulk{
		id: f.bulkID, from: f.from,
		applicationID: f.applicationID, entityID: f.entityID,
		campaignReferenceID: f.campaignReferenceID, callbackData: f.callbackData,
		sentAt: now, doneAt: now.Add(s.opts.ReportDelay),
		trackingURL: f.trackingURL,
	}
	b.sender, b.domain = fromParts(f.from)
	if b.trackingURL == "" {
		b.trackingURL = s.opts.TrackingURL
	}
	opens, clicks := f.tracks()
	if b.trackingURL != "" && clicks {
		b.clickURL = clickURL(f.html)
	}
	recipients := make([]string, 0, len(f.to)+len(f.cc)+len(f.bcc))
	recipients = append(append(append(recipients, f.to...), f.cc...), f.bcc...)
	b.messages = make([]message, len(recipients))
	var dup []bool
	if fs.DuplicateRate > 0 {
		dup = make([]bool, len(recipients))
	}
	var events []plannedEvent
	var platform *job

	// One critical section per request keeps a seeded run repeatable.
	s.rngMu.Lock()
	if b.id == "" {
		b.id = newID(s.rng)
	}
	shared := f.messageID
	if shared == "" && f.preserveRecipients {
		shared = newID(s.rng)
	}
	isBlocked := s.bounces.isBlocked(b.domain, now)
	bounces := 0
	for i, to := range recipients {
		m := &b.messages[i]
		m.to, m.id = to, shared
		if m.id == "" {
			m.id = newID(s.rng)
		}
		switch {
		case isBlocked:
			m.outcome = &blocked
		default:
			m.outcome = outcomeFor(to)
			if m.outcome == &delivered && fs.BounceRate > 0 && s.rng.Float64() < fs.BounceRate {
				m.outcome = randomBounce
			}
		}
		if m.outcome.Bounce {
			bounces++
		}
		if dup != nil {
			dup[i] = s.rng.Float64() < fs.DuplicateRate
		}
		if b.trackingURL != "" {
			events = s.planTracking(events, i, m.outcome, opens, clicks, fs.DuplicateRate)
		}
	}
	if !isBlocked {
		if cs := s.bounces.record(b.domain, now, len(recipients), bounces); len(cs) > 0 {
			for _, c := range cs {
				if c.kind == HighBounceRateBlocked {
					s.stats.domainBlocks.Add(1)
				} else {
					s.stats.domainWarnings.Add(1)
				}
			}
			s.log.Warn("sandbox: sending domain crossed a bounce-rate threshold", "domain", b.domain, "events", len(cs))
			if s.opts.PlatformEventsURL != "" {
				platform = s.platformJob(b.domain, now, cs, fs.DuplicateRate)
			}
		}
	}
	s.rngMu.Unlock()

	newDups, repeats := s.store.add(b)
	s.stats.accepted.Add(1)
	s.stats.recipients.Add(int64(len(recipients)))
	s.stats.duplicateRecipients.Add(newDups)
	s.stats.duplicateSends.Add(repeats)
	if isBlocked {
		s.stats.blockedRecipients.Add(int64(len(recipients)))
	}

	notify := f.notifyURL
	if notify == "" {
		notify = s.opts.NotifyURL
	}
	if notify != "" {
		s.reports.enqueueBulk(r.Context(), notify, b, dup, events)
	} else if len(events) > 0 {
		// No report to wait for: the events follow the delivery itself.
		s.reports.enqueueEvents(r.Context(), s.trackingJobs(b, events))
	}
	if platform != nil {
		// Not bound to the request, nor waiting for room: a client that
		// gives up must not lose the domain's warning or block.
		s.reports.enqueueNow(platform)
	}
	return sendAnswer(b, f.preserveRecipients)
}

// sendAnswer writes Infobip's 200 by hand: at 1000 messages a request,
// encoding/json's reflection is the sandbox's largest cost.
func sendAnswer(b *bulk, preserved bool) answer {
	msgs := b.messages
	if preserved && len(msgs) > 1 {
		msgs = msgs[:1]
	}
	const status = `,"status":{"groupId":1,"groupName":"PENDING","id":26,"name":"PENDING_ACCEPTED","description":"Message accepted, pending for delivery."}}`
	out := make([]byte, 0, 32+len(msgs)*(len(status)+80))
	out = append(out, `{"bulkId":`...)
	out = appendJSONString(out, b.id)
	out = append(out, `,"messages":[`...)
	for i, m := range msgs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"to":`...)
		out = appendJSONString(out, m.to)
		out = append(out, `,"messageId":`...)
		out = appendJSONString(out, m.id)
		out = append(out, status...)
	}
	out = append(out, "]}"...)
	return answer{status: http.StatusOK, body: out}
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		b, _ := json.Marshal(s) // replaces invalid bytes
		return append(dst, b...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			dst = append(dst, `\u00`...)
			dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// report is the delivery report of message i of b.
func (s *Sandbox) report(b *bulk, i int) infobip.DeliveryReport {
	m := b.messages[i]
	o := m.outcome.named(s.opts.GenericGroupNames)
	rep := infobip.DeliveryReport{
		BulkID: b.id, MessageID: m.id, To: m.to,
		SentAt: infobip.Time{Time: b.sentAt}, DoneAt: infobip.Time{Time: b.doneAt},
		SMSCount: 1, AttemptCount: 1,
		Price:  &infobip.Price{PricePerMessage: 0, Currency: "UNKNOWN"},
		Status: o.Status, Error: o.Error,
		CallbackData: b.callbackData, ApplicationID: b.applicationID, EntityID: b.entityID,
		CampaignReferenceID: b.campaignReferenceID,
	}
	if o.SMTPResponse != "" {
		rep.SendingIP = sendingIP
		rep.SMTP = &infobip.SMTPInfo{Response: o.SMTPResponse}
		rep.TimeToFirstAttempt = max(1, s.opts.ReportDelay.Milliseconds())
	} else {
		rep.AttemptCount = 0
	}
	return rep
}

// newID returns a 20-character id in Infobip's style from two draws.
func newID(rng interface{ Uint64() uint64 }) string {
	var b [20]byte
	for half := 0; half < 2; half++ {
		v := rng.Uint64()
		for i := range 10 {
			b[half*10+i] = "abcdefghijklmnopqrstuvwxyz0123456789"[v%36]
			v /= 36
		}
	}
	return string(b[:])
}
