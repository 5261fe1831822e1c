package sandbox

import (
	"html"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
)

// TrackingEvent is one body POSTed to a trackingUrl: Infobip's
// WebhookTrackingPayload, one event per POST. messageId is a string, as in
// every example Infobip publishes (its schema says number).
type TrackingEvent struct {
	// NotificationType is Opened, Clicked, Complained, LateBounce or
	// Unsubscribed.
	NotificationType string `json:"notificationType"`
	// EventID is a fresh UUID per event; a duplicate POST repeats it.
	EventID string `json:"eventId"`
	// Domain is the domain of the send's from address.
	Domain string `json:"domain,omitempty"`
	// Recipient is the address the message went to.
	Recipient string `json:"recipient"`
	// Sender is the send's from address; complaints and late bounces only.
	Sender string `json:"sender,omitempty"`
	// URL is the link clicked; clicks only.
	URL string `json:"url,omitempty"`
	// SendDateTime is when the message was sent, in epoch milliseconds.
	SendDateTime int64 `json:"sendDateTime"`
	// MessageID, BulkID, CallbackData, CampaignReferenceID, EntityID and
	// ApplicationID echo the send, as its delivery report does.
	MessageID    string `json:"messageId"`
	BulkID       string `json:"bulkId,omitempty"`
	CallbackData string `json:"callbackData,omitempty"`
	// RecipientInfo and GeoLocation describe the reader; opens, clicks and
	// unsubscribes only.
	RecipientInfo       *RecipientInfo `json:"recipientInfo,omitempty"`
	GeoLocation         *GeoLocation   `json:"geoLocation,omitempty"`
	CampaignReferenceID string         `json:"campaignReferenceId,omitempty"`
	EntityID            string         `json:"entityId,omitempty"`
	ApplicationID       string         `json:"applicationId,omitempty"`
}

// RecipientInfo is the device a tracked action came from.
type RecipientInfo struct {
	DeviceType string `json:"deviceType,omitempty"`
	OS         string `json:"os,omitempty"`
	DeviceName string `json:"deviceName,omitempty"`
}

// GeoLocation is where a tracked action came from.
type GeoLocation struct {
	CountryName string `json:"countryName,omitempty"`
	City        string `json:"city,omitempty"`
}

// The reader every sandbox open, click and unsubscribe claims.
var (
	sandboxReader = &RecipientInfo{DeviceType: "Phone", OS: "iOS 17", DeviceName: "Apple"}
	sandboxPlace  = &GeoLocation{CountryName: "Croatia", City: "Zagreb"}
)

// DefaultClickURL is the url of CLICKED events of sends whose html has no
// http(s) link.
const DefaultClickURL = "https://www.example.com/"

// plannedEvent is a tracking event chosen at acceptance (so that a seeded
// run is repeatable) and posted once its message's report is done.
type plannedEvent struct {
	msg  int    // index in the bulk's messages
	kind string // notificationType
	id   string // eventId
	dup  bool   // posted twice
}

// planTracking appends message i's tracking events: its outcome's own, or
// opens and clicks for a plainly delivered recipient of a send that tracks
// them. Each of the prefixed outcomes thus gets exactly one event, which
// keeps tests of their attribution simple. Called with rngMu held.
func (s *Sandbox) planTracking(events []plannedEvent, i int, o *Outcome, opens, clicks bool, dupRate float64) []plannedEvent {
	add := func(kind string) {
		e := plannedEvent{msg: i, kind: kind, id: newUUID(s.rng)}
		e.dup = dupRate > 0 && s.rng.Float64() < dupRate
		events = append(events, e)
	}
	switch {
	case o.Tracking != "":
		add(o.Tracking)
	case o == &delivered:
		if opens {
			add(Opened)
		}
		if clicks {
			add(Clicked)
		}
	}
	return events
}

// trackingJobs makes one job per message of events (all of one bulk,
// ordered by message): a message's events go in order (an open before its
// click, a duplicate right after its original), different messages' in
// parallel.
func (s *Sandbox) trackingJobs(b *bulk, events []plannedEvent) []*job {
	var jobs []*job
	var cur *job
	for k, e := range events {
		if k == 0 || e.msg != events[k-1].msg {
			cur = &job{kind: jobTracking, url: b.trackingURL, b: b}
			jobs = append(jobs, cur)
		}
		body := s.trackingBody(b, e)
		cur.events = append(cur.events, eventPost{body: body})
		if e.dup {
			cur.events = append(cur.events, eventPost{body: body, dup: true})
		}
	}
	return jobs
}

// trackingBody encodes a planned event of b.
func (s *Sandbox) trackingBody(b *bulk, e plannedEvent) []byte {
	m := &b.messages[e.msg]
	ev := TrackingEvent{
		NotificationType: e.kind, EventID: e.id, Domain: b.domain, Recipient: m.to,
		SendDateTime: b.sentAt.UnixMilli(), MessageID: m.id, BulkID: b.id, CallbackData: b.callbackData,
		CampaignReferenceID: b.campaignReferenceID, EntityID: b.entityID, ApplicationID: b.applicationID,
	}
	switch e.kind {
	case Complained, LateBounce:
		ev.Sender = b.sender
	case Opened, Clicked, Unsubscribed:
		ev.RecipientInfo, ev.GeoLocation = sandboxReader, sandboxPlace
	}
	if e.kind == Clicked {
		ev.URL = b.clickURL
	}
	return marshal(ev)
}

// hrefPattern finds a link's target in html; Go's regexp runs in linear
// time, so a 26 MB body is safe.
var hrefPattern = regexp.MustCompile(`(?i)\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))`)

// maxClickURL bounds the url reported for a click.
const maxClickURL = 2048

// clickURL is the first absolute http(s) link of body, else
// DefaultClickURL: what a reader would click.
func clickURL(body string) string {
	for _, m := range hrefPattern.FindAllStringSubmatch(body, 50) {
		v := strings.TrimSpace(html.UnescapeString(m[1] + m[2] + m[3]))
		if len(v) > maxClickURL {
			continue
		}
		if u, err := url.Parse(v); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			return v
		}
	}
	return DefaultClickURL
}

// fromParts is the bare address of a from field ("Name <a@b>" or "a@b")
// and its domain, lower-cased; empty when it names none.
func fromParts(from string) (address, domain string) {
	address = strings.TrimSpace(from)
	if a, err := mail.ParseAddress(from); err == nil {
		address = a.Address
	} else if i := strings.LastIndexByte(address, '<'); i >= 0 {
		address = strings.TrimSuffix(address[i+1:], ">")
	}
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return address, ""
	}
	return address, strings.ToLower(strings.TrimSpace(address[at+1:]))
}

// newUUID returns a random (version 4) UUID from two draws of rng.
func newUUID(rng interface{ Uint64() uint64 }) string {
	var b [16]byte
	for half := range 2 {
		v := rng.Uint64()
		for i := range 8 {
			b[half*8+i] = byte(v >> (8 * i))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return string(out)
}
