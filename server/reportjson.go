package server

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// The webhooks' bodies (hundreds of reports each) are decoded by a parser
// made for their three messages instead of protojson, whose reflection
// and allocations were a fifth of the ingest CPU. The parser never
// refuses: it accepts only a subset of what protojson accepts and, given
// anything else (a syntax error, a number where a string goes, an integer
// written as "5" or 5.0, an escaped key that a normalisation would miss, a
// field the gateway keeps for itself), it declines, and the body takes the
// protojson path of before, which decides, so that every refusal and every
// field-naming error is protojson's own. What it accepts it must decode
// exactly as that path would: the differential tests in
// reportjson_test.go check it against protojson on every body the test
// suite posts (see fastDecodeCheck).

// decodeRequestBody decodes a proto request body as the gateway does: the
// webhooks' bodies by the fast parser when it can, else item by item
// (unmarshalItemwise, unmarshalEventBody); any other body with one
// protojson pass.
func decodeRequestBody(opts protojson.UnmarshalOptions, b []byte, msg proto.Message) error {
	// The parser discards unknown fields, as the gateway's options say.
	if opts.DiscardUnknown && decodeWebhookFast(b, msg) {
		if fastDecodeCheck != nil {
			fastDecodeCheck(b, msg, func(into proto.Message) error { return decodeRequestBodyFull(opts, b, into) })
		}
		return nil
	}
	return decodeRequestBodyFull(opts, b, msg)
}

// decodeRequestBodyFull is the protojson path: the only one for bodies the
// fast parser declines, and the reference it is tested against.
func decodeRequestBodyFull(opts protojson.UnmarshalOptions, b []byte, msg proto.Message) error {
	name := msg.ProtoReflect().Descriptor().FullName()
	if spec, ok := itemwiseBodies[name]; ok {
		return unmarshalItemwise(opts, b, msg, spec)
	}
	if spec, ok := eventBodies[name]; ok {
		return unmarshalEventBody(opts, b, msg, spec)
	}
	return opts.Unmarshal(b, msg)
}

// fastDecodeCheck, set by tests only, is called with each body the fast
// parser decoded, its result, and the protojson path to compare it with.
var fastDecodeCheck func(body []byte, fast proto.Message, full func(into proto.Message) error)

// decodeWebhookFast decodes a webhook request body into msg, reporting
// false when it declines, with msg reset for the full path.
func decodeWebhookFast(b []byte, msg proto.Message) bool {
	var ok bool
	switch req := msg.(type) {
	case *ibmailv1.IngestDeliveryReportsRequest:
		p := newJSONParser(b)
		ok = p.deliveryRequest(req) && p.atEnd()
	case *ibmailv1.IngestTrackingReportsRequest:
		p := newJSONParser(b)
		ok = p.trackingBody(req)
	case *ibmailv1.IngestPlatformEventsRequest:
		p := newJSONParser(b)
		ok = p.platformBody(req)
	default:
		return false
	}
	if !ok {
		proto.Reset(msg)
	}
	return ok
}

// newJSONParser makes one copy of the body as a string: the strings
// decoded without escapes are slices of it, not one allocation each.
func newJSONParser(b []byte) *jsonParser { return &jsonParser{s: string(b)} }

// fieldTable maps the names protojson takes for a message's fields (the
// JSON name, else the proto name) to their numbers.
type fieldTable map[string]protoreflect.FieldNumber

func fieldsOf(m proto.Message) fieldTable {
	fs := m.ProtoReflect().Descriptor().Fields()
	t := make(fieldTable, 2*fs.Len())
	for i := range fs.Len() {
		if fd := fs.Get(i); fd.Number() < 64 { // the parser's seen set; the messages' numbers are small
			t[fd.TextName()] = fd.Number()
		}
	}
	for i := range fs.Len() { // a JSON name wins over another field's proto name, as in protojson
		if fd := fs.Get(i); fd.Number() < 64 {
			t[fd.JSONName()] = fd.Number()
		}
	}
	return t
}

var (
	deliveryRequestFields  = fieldsOf(&ibmailv1.IngestDeliveryReportsRequest{})
	deliveryReportFields   = fieldsOf(&ibmailv1.DeliveryReport{})
	reportPriceFields      = fieldsOf(&ibmailv1.ReportPrice{})
	reportStatusFields     = fieldsOf(&ibmailv1.ReportStatus{})
	reportErrorFields      = fieldsOf(&ibmailv1.ReportError{})
	reportSmtpFields       = fieldsOf(&ibmailv1.ReportSmtp{})
	trackingRequestFields  = fieldsOf(&ibmailv1.IngestTrackingReportsRequest{})
	trackingReportFields   = fieldsOf(&ibmailv1.TrackingReport{})
	recipientInfoFields    = fieldsOf(&ibmailv1.TrackingRecipientInfo{})
	geoLocationFields      = fieldsOf(&ibmailv1.TrackingGeoLocation{})
	platformRequestFields  = fieldsOf(&ibmailv1.IngestPlatformEventsRequest{})
	platformEventFields    = fieldsOf(&ibmailv1.PlatformEvent{})
	platformDetailsFields  = fieldsOf(&ibmailv1.PlatformEventDetails{})
	trackingGeoLocationNum = (&ibmailv1.TrackingReport{}).ProtoReflect().Descriptor().Fields().ByName("geo_location").Number()
)

// maxFastDepth bounds the nesting of unknown values the parser skips;
// deeper ones go to protojson, whose own bound is far higher.
const maxFastDepth = 64

// jsonParser is a strict JSON reader over a whole body. Its methods return
// false on anything they decline.
type jsonParser struct {
	s   string // the JSON text
	i   int
	buf []byte // escaped strings are unescaped here

	// bareMessageID makes the next string read take a bare scalar: a
	// tracking report's messageId written as a number (normaliseTrackingReport).
	bareMessageID bool
	// What object saw of the tracking normalisation and the watched key.
	hasGeo      bool
	geoInfoAt   int
	geoInfoSeen int
	watched     bool
}

// objectMode says what object does beyond a message's plain fields.
type objectMode struct {
	// normalise applies normaliseTrackingReport.
	normalise bool
	// watch is a key whose presence object reports in p.watched.
	watch string
}

func (p *jsonParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) peek() byte {
	p.ws()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *jsonParser) atEnd() bool {
	p.ws()
	return p.i == len(p.s)
}

// str reads a JSON string as protojson's decoder does (UTF-8 checked,
// escapes and surrogate pairs as it takes them); plain says it had no
// escapes.
func (p *jsonParser) str() (s string, plain, ok bool) {
	b := p.s
	if p.i >= len(b) || b[p.i] != '"' {
		return "", false, false
	}
	start := p.i + 1
	j := start
	for j < len(b) {
		c := b[j]
		switch {
		case c == '"':
			p.i = j + 1
			return p.s[start:j], true, true
		case c == '\\':
			return p.escaped(start, j)
		case c < ' ':
			return "", false, false
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(b[j:])
			if r == utf8.RuneError && n == 1 {
				return "", false, false
			}
			j += n
		default:
			j++
		}
	}
	return "", false, false
}

// escaped reads the rest of a string from its first backslash at j.
func (p *jsonParser) escaped(start, j int) (string, bool, bool) {
	b := p.s
	out := append(p.buf[:0], b[start:j]...)
	for j < len(b) {
		c := b[j]
		switch {
		case c == '"':
			p.i, p.buf = j+1, out
			return string(out), false, true
		case c == '\\':
			if j+1 >= len(b) {
				return "", false, false
			}
			switch e := b[j+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(b, j+2)
				if !ok {
					return "", false, false
				}
				if utf16.IsSurrogate(r) {
					if j+7 >= len(b) || b[j+6] != '\\' || b[j+7] != 'u' {
						return "", false, false
					}
					r2, ok := hex4(b, j+8)
					if r = utf16.DecodeRune(r, r2); !ok || r == unicode.ReplacementChar {
						return "", false, false
					}
					j += 6
				}
				out = utf8.AppendRune(out, r)
				j += 4
			default:
				return "", false, false
			}
			j += 2
		case c < ' ':
			return "", false, false
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(b[j:])
			if r == utf8.RuneError && n == 1 {
				return "", false, false
			}
			out = append(out, b[j:j+n]...)
			j += n
		default:
			out = append(out, c)
			j++
		}
	}
	return "", false, false
}

// hex4 reads the four hex digits of a \u escape at b[i:].
func hex4(b string, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number reads a JSON number (RFC 8259's grammar) and returns its text;
// integer says it has neither fraction nor exponent.
func (p *jsonParser) number() (text string, integer, ok bool) {
	b, j := p.s, p.i
	digit := func() bool { return j < len(b) && '0' <= b[j] && b[j] <= '9' }
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case digit():
		for digit() {
			j++
		}
	default:
		return "", false, false
	}
	integer = true
	if j < len(b) && b[j] == '.' {
		j++
		if !digit() {
			return "", false, false
		}
		for digit() {
			j++
		}
		integer = false
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digit() {
			return "", false, false
		}
		for digit() {
			j++
		}
		integer = false
	}
	text, p.i = p.s[p.i:j], j
	return text, integer, true
}

// literal reads true, false or null.
func (p *jsonParser) literal(word string) bool {
	if strings.HasPrefix(p.s[p.i:], word) {
		p.i += len(word)
		return true
	}
	return false
}

// skip reads and checks any JSON value, of an unknown field.
func (p *jsonParser) skip(depth int) bool {
	switch p.peek() {
	case '"':
		_, _, ok := p.str()
		return ok
	case '{':
		if depth >= maxFastDepth {
			return false
		}
		p.i++
		if p.peek() == '}' {
			p.i++
			return true
		}
		for {
			if p.peek() != '"' {
				return false
			}
			if _, _, ok := p.str(); !ok || p.peek() != ':' {
				return false
			}
			p.i++
			if !p.skip(depth + 1) {
				return false
			}
			switch p.peek() {
			case ',':
				p.i++
			case '}':
				p.i++
				return true
			default:
				return false
			}
		}
	case '[':
		if depth >= maxFastDepth {
			return false
		}
		p.i++
		if p.peek() == ']' {
			p.i++
			return true
		}
		for {
			if !p.skip(depth + 1) {
				return false
			}
			switch p.peek() {
			case ',':
				p.i++
			case ']':
				p.i++
				return true
			default:
				return false
			}
		}
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	default:
		_, _, ok := p.number()
		return ok
	}
}

// object reads a JSON object of a message whose field names t holds, as
// protojson does: unknown members skipped, a field given twice (by either
// of its names) declined, null leaving a field unset. field is called for
// every other member that names a field, with p at its value. It returns
// the fields seen.
func (p *jsonParser) object(t fieldTable, mode objectMode, field func(protoreflect.FieldNumber) bool) (uint64, bool) {
	var seen uint64
	if p.peek() != '{' {
		return 0, false
	}
	p.i++
	if p.peek() == '}' {
		p.i++
		return 0, true
	}
	for {
		if p.peek() != '"' {
			return 0, false
		}
		key, plain, ok := p.str()
		if !ok || p.peek() != ':' {
			return 0, false
		}
		p.i++
		p.ws()
		if mode.watch != "" && key == mode.watch {
			p.watched = true
		}
		if mode.normalise && plain {
			// normaliseTrackingReport compares the keys as written.
			switch key {
			case "messageId":
				if p.i < len(p.s) && (p.s[p.i] == '-' || ('0' <= p.s[p.i] && p.s[p.i] <= '9')) {
					p.bareMessageID = true
				}
			case "geoLocation":
				p.hasGeo = true
			case "geoLocationInfo":
				// Renamed to geoLocation unless the object has one: which,
				// is known at its end.
				p.geoInfoAt = p.i
				p.geoInfoSeen++
			}
		}
		num, known := t[key]
		switch {
		case !known && strings.HasPrefix(key, "["):
			return 0, false // an extension's name, which protojson resolves
		case !known:
			if !p.skip(0) {
				return 0, false
			}
		case seen&(1<<num) != 0:
			return 0, false // protojson's "duplicate field"
		default:
			seen |= 1 << num
			if p.literal("null") {
				break
			}
			if !field(num) {
				return 0, false
			}
		}
		p.bareMessageID = false
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return seen, true
		default:
			return 0, false
		}
	}
}

// list reads a JSON array of messages, calling item with p at each.
func (p *jsonParser) list(item func() bool) bool {
	if p.peek() != '[' {
		return false
	}
	p.i++
	if p.peek() == ']' {
		p.i++
		return true
	}
	for {
		if p.peek() != '{' || !item() {
			return false
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return true
		default:
			return false
		}
	}
}

func (p *jsonParser) strTo(dst *string) bool {
	if p.bareMessageID {
		return p.bareScalar(dst)
	}
	s, _, ok := p.str()
	*dst = s
	return ok
}

// bareScalar reads what normaliseTrackingReport quotes: a value that
// begins as a number, up to the next delimiter, whatever it holds. Only
// printable ASCII without a backslash is taken, which reads the same
// quoted; the rest goes to protojson.
func (p *jsonParser) bareScalar(dst *string) bool {
	p.bareMessageID = false
	j := p.i
	for ; j < len(p.s); j++ {
		c := p.s[j]
		if strings.IndexByte(" \t\n\r,:{}[]\"", c) >= 0 {
			break
		}
		if c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	*dst, p.i = p.s[p.i:j], j
	return true
}

func (p *jsonParser) int32To(dst *int32) bool {
	n, ok := p.integer(32)
	*dst = int32(n)
	return ok
}

func (p *jsonParser) int64To(dst *int64) bool {
	n, ok := p.integer(64)
	*dst = n
	return ok
}

// integer reads an integer field's value: a JSON number without fraction
// or exponent, or such a number alone in a string (how protojson writes
// an int64, "1767308400000"). 5.0, 1e3, " 5" and the like are protojson's
// to judge.
func (p *jsonParser) integer(bits int) (int64, bool) {
	var text string
	if p.i < len(p.s) && p.s[p.i] == '"' {
		s, plain, ok := p.str()
		if !ok || !plain || !isJSONInteger(s) {
			return 0, false
		}
		text = s
	} else {
		t, integer, ok := p.number()
		if !ok || !integer {
			return 0, false
		}
		text = t
	}
	n, err := strconv.ParseInt(text, 10, bits)
	return n, err == nil
}

// isJSONInteger says s is -?(0|[1-9][0-9]*).
func isJSONInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (p *jsonParser) doubleTo(dst *float64) bool {
	text, _, ok := p.number()
	if !ok {
		return false // "NaN", "1.5" as strings are protojson's
	}
	f, err := strconv.ParseFloat(text, 64)
	*dst = f
	return err == nil
}

func (p *jsonParser) boolTo(dst *bool) bool {
	switch {
	case p.literal("true"):
		*dst = true
	case p.literal("false"):
		*dst = false
	default:
		return false
	}
	return true
}

// The field numbers below are those of report.proto; TestFastDecodeFields
// checks each against protojson.

func (p *jsonParser) deliveryRequest(req *ibmailv1.IngestDeliveryReportsRequest) bool {
	_, ok := p.object(deliveryRequestFields, objectMode{}, func(num protoreflect.FieldNumber) bool {
		if num != 1 {
			return false // undecodable_results: the gateway's own, which the full path clears
		}
		return p.list(func() bool {
			r := &ibmailv1.DeliveryReport{}
			req.Results = append(req.Results, r)
			return p.deliveryReport(r)
		})
	})
	return ok
}

func (p *jsonParser) deliveryReport(r *ibmailv1.DeliveryReport) bool {
	_, ok := p.object(deliveryReportFields, objectMode{}, func(num protoreflect.FieldNumber) bool {
		switch num {
		case 1:
			return p.strTo(&r.BulkId)
		case 2:
			return p.strTo(&r.MessageId)
		case 3:
			return p.strTo(&r.To)
		case 4:
			return p.strTo(&r.SentAt)
		case 5:
			return p.strTo(&r.DoneAt)
		case 6:
			return p.int32To(&r.SmsCount)
		case 7:
			return p.int32To(&r.AttemptCount)
		case 8:
			return p.int64To(&r.TimeToFirstAttempt)
		case 9:
			r.Price = &ibmailv1.ReportPrice{}
			return p.price(r.Price)
		case 10:
			r.Status = &ibmailv1.ReportStatus{}
			return p.status(r.Status)
		case 11:
			r.Error = &ibmailv1.ReportError{}
			return p.reportError(r.Error)
		case 12:
			return p.strTo(&r.CallbackData)
		case 13:
			return p.strTo(&r.ApplicationId)
		case 14:
			return p.strTo(&r.EntityId)
		case 15:
			return p.strTo(&r.CampaignReferenceId)
		case 16:
			return p.strTo(&r.BrowserLink)
		case 17:
			return p.strTo(&r.SendingIp)
		case 18:
			r.Smtp = &ibmailv1.ReportSmtp{}
			return p.smtp(r.Smtp)
		}
		return false
	})
	return ok
}

func (p *jsonParser) price(m *ibmailv1.ReportPrice) bool {
	_, ok := p.object(reportPriceFields, objectMode{}, func(num protoreflect.FieldNumber) bool {
		switch num {
		case 1:
			return p.doubleTo(&m.PricePerMessage)
		case 2:
			return p.strTo(&m.Currency)
		}
		return false
	})
	return ok
}

func (p *jsonParser) status(m *ibmailv1.ReportStatus) bool {
	_, ok := p.object(reportStatusFields, objectMode{}, func(num protoreflect.FieldNumber) bool {
		switch num {
		case 1:
			return p.int32To(&m.Id)
		case 2:
			return p.int32To(&m.GroupId)
		case 3:
			return p.strTo(&m.GroupName)
		case 4:
			return p.strTo(&m.Name)
		case 5:
			return p.strTo(&m.Description)
		}
		return false
	})
	return ok
}

func (p *jsonParser) reportError(m *ibmailv1.ReportError) bool {
	_, ok := p.object(reportErrorFields, objectMode{}, func(num protoreflect.FieldNumber) bool {
		switch num {
		case 1:
			return p.int32To(&m.Id)
		case 2:
			return p.strTo(&m.Name)
		case 3:
			return p.strTo(&m.Description)
		case 4:
			return p.int32To(&m.GroupId)
		case 5:
			return p.strTo(&m.GroupName)
		case 6:
			return p.boolTo(&m.Permanent)
		}
		return false
	})
	return ok
}

func (p *jsonParser) smtp(m *ibmailv1.ReportSmtp) bool {
	_, ok := p.object(reportSmtpFields, objectMode{}, func(num protoreflect.FieldNumber) bool {
		if num == 1 {
			return p.strTo(&m.Response)
		}
		return false
	})
	return ok
}

// trackingBody reads a tracking webhook's body in the forms
// unmarshalEventBody takes: an array of reports, one report, or the API's
// {"reports":[...]}, which a bare report's "reports" key announces.
func (p *jsonParser) trackingBody(req *ibmailv1.IngestTrackingReportsRequest) bool {
	switch p.peek() {
	case '[':
		return p.list(func() bool {
			r := &ibmailv1.TrackingReport{}
			req.Reports = append(req.Reports, r)
			return p.trackingReport(r, objectMode{normalise: true})
		}) && p.atEnd()
	case '{':
		start := p.i
		r := &ibmailv1.TrackingReport{}
		ok := p.trackingReport(r, objectMode{normalise: true, watch: "reports"}) && p.atEnd()
		if p.watched {
			*p = jsonParser{s: p.s, i: start, buf: p.buf}
			return p.trackingRequest(req) && p.atEnd()
		}
		req.Reports = append(req.Reports, r)
		return ok
	}
	return false
}

func (p *jsonParser) trackingRequest(req *ibmailv1.IngestTrackingReportsRequest) bool {
	_, ok := p.object(trackingRequestFields, objectMode{}, func(num protoreflect.FieldNumber) bool {
		if num != 1 {
			return false // undecodable_reports: the gateway's own
		}
		return p.list(func() bool {
			r := &ibmailv1.TrackingReport{}
			req.Reports = append(req.Reports, r)
			return p.trackingReport(r, objectMode{}) // the API's form is not normalised
		})
	})
	return ok
}

func (p *jsonParser) trackingReport(r *ibmailv1.TrackingReport, mode objectMode) bool {
	p.hasGeo, p.geoInfoSeen = false, 0
	seen, ok := p.object(trackingReportFields, mode, func(num protoreflect.FieldNumber) bool {
		switch num {
		case 1:
			return p.strTo(&r.NotificationType)
		case 2:
			return p.strTo(&r.EventId)
		case 3:
			return p.strTo(&r.Domain)
		case 4:
			return p.strTo(&r.Recipient)
		case 5:
			return p.strTo(&r.Sender)
		case 6:
			return p.strTo(&r.Url)
		case 7:
			return p.int64To(&r.SendDateTime)
		case 8:
			return p.strTo(&r.MessageId)
		case 9:
			return p.strTo(&r.BulkId)
		case 10:
			return p.strTo(&r.CallbackData)
		case 11:
			r.RecipientInfo = &ibmailv1.TrackingRecipientInfo{}
			return p.recipientInfo(r.RecipientInfo)
		case 12:
			r.GeoLocation = &ibmailv1.TrackingGeoLocation{}
			return p.geoLocation(r.GeoLocation)
		case 13:
			return p.strTo(&r.CampaignReferenceId)
		case 14:
			return p.strTo(&r.EntityId)
		case 15:
			return p.strTo(&r.ApplicationId)
		}
		return false
	})
	if !ok || !mode.normalise || p.hasGeo || p.geoInfoSeen == 0 {
		return ok
	}
	// geoLocationInfo stands for geoLocation: once, and not beside a
	// geo_location (protojson's duplicate).
	if p.geoInfoSeen > 1 || seen&(1<<trackingGeoLocationNum) != 0 {
		return false
	}
	end := p.i
	p.i = p.geoInfoAt
	if !p.literal("null") {
		r.GeoLocation = &ibmailv1.TrackingGeoLocation{}
		if !p.geoLocation(r.GeoLocation) {
			return false
		}
	}
	p.i = end
	return true
}

func (p *jsonParser) recipientInfo(m *ibmailv1.TrackingRecipientInfo) bool {
	_, ok := p.object(recipientInfoFields, objectMode{}, func(num protoreflect.FieldNumber) bool {
		switch num {
		case 1:
			return p.strTo(&m.DeviceType)
		case 2:
			return p.strTo(&m.Os)
		case 3:
			return p.strTo(&m.DeviceName)
		}
		return false
	})
	return ok
}

func (p *jsonParser) geoLocation(m *ibmailv1.TrackingGeoLocation) bool {
	_, ok := p.object(geoLocationFields, objectMode{}, func(num protoreflect.FieldNumber) bool {
		switch num {
		case 1:
			return p.strTo(&m.CountryName)
		case 2:
			return p.strTo(&m.City)
		}
		return false
	})
	return ok
}

// platformBody reads a platform-event webhook's body, in the forms of
// trackingBody, without its normalisation.
func (p *jsonParser) platformBody(req *ibmailv1.IngestPlatformEventsRequest) bool {
	switch p.peek() {
	case '[':
		return p.list(func() bool {
			e := &ibmailv1.PlatformEvent{}
			req.Events = append(req.Events, e)
			return p.platformEvent(e, objectMode{})
		}) && p.atEnd()
	case '{':
		start := p.i
		e := &ibmailv1.PlatformEvent{}
		ok := p.platformEvent(e, objectMode{watch: "events"}) && p.atEnd()
		if p.watched {
			*p = jsonParser{s: p.s, i: start, buf: p.buf}
			return p.platformRequest(req) && p.atEnd()
		}
		req.Events = append(req.Events, e)
		return ok
	}
	return false
}

func (p *jsonParser) platformRequest(req *ibmailv1.IngestPlatformEventsRequest) bool {
	_, ok := p.object(platformRequestFields, objectMode{}, func(num protoreflect.FieldNumber) bool {
		if num != 1 {
			return false // undecodable_events: the gateway's own
		}
		return p.list(func() bool {
			e := &ibmailv1.PlatformEvent{}
			req.Events = append(req.Events, e)
			return p.platformEvent(e, objectMode{})
		})
	})
	return ok
}

func (p *jsonParser) platformEvent(e *ibmailv1.PlatformEvent, mode objectMode) bool {
	_, ok := p.object(platformEventFields, mode, func(num protoreflect.FieldNumber) bool {
		switch num {
		case 1:
			return p.strTo(&e.EventId)
		case 2:
			return p.int64To(&e.CreatedAt)
		case 3:
			e.EventDetails = &ibmailv1.PlatformEventDetails{}
			return p.platformDetails(e.EventDetails)
		}
		return false
	})
	return ok
}

func (p *jsonParser) platformDetails(m *ibmailv1.PlatformEventDetails) bool {
	_, ok := p.object(platformDetailsFields, objectMode{}, func(num protoreflect.FieldNumber) bool {
		switch num {
		case 1:
			return p.strTo(&m.Type)
		case 2:
			return p.strTo(&m.AccountKey)
		case 3:
			return p.strTo(&m.Domain)
		case 4:
			return p.doubleTo(&m.WarnThreshold)
		case 5:
			return p.doubleTo(&m.BlockThreshold)
		case 6:
			return p.doubleTo(&m.BounceRate)
		case 7:
			return p.strTo(&m.Scope)
		}
		return false
	})
	return ok
}

// parseCallbackFast reads the fields parseCallbackData wants from a JSON
// callbackData as encoding/json would, without its reflection; it
// declines (for encoding/json to decide) anything else: a key that only
// case folding would match, a value not a string, text not strict JSON.
func parseCallbackFast(cb string) (callbackFields, bool) {
	var f callbackFields
	p := jsonParser{s: cb}
	if p.peek() != '{' {
		return f, false
	}
	p.i++
	if p.peek() == '}' {
		p.i++
		return f, p.atEnd()
	}
	for {
		if p.peek() != '"' {
			return f, false
		}
		key, _, ok := p.str()
		if !ok || p.peek() != ':' {
			return f, false
		}
		p.i++
		p.ws()
		var dst *string
		switch key {
		case "profileId":
			dst = &f.ProfileID
		case "ibmailSendId":
			dst = &f.SendID
		default:
			if strings.EqualFold(key, "profileId") || strings.EqualFold(key, "ibmailSendId") || !isASCII(key) {
				return f, false
			}
		}
		switch {
		case dst == nil:
			if !p.skip(0) {
				return f, false
			}
		case p.literal("null"):
			// encoding/json leaves the field as it was
		case p.peek() == '"':
			s, _, ok := p.str()
			if !ok {
				return f, false
			}
			*dst = s
		default:
			return f, false
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return f, p.atEnd()
		default:
			return f, false
		}
	}
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
