package server

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/sandbox"
)

// Every body the package's tests post through the gateway (the hostile
// suite's thousands of cases among them) that the fast parser decodes is
// decoded again by the protojson path and compared: a difference panics
// the handler, which fails the test that posted it. Benchmarks skip it.
func init() {
	fastDecodeCheck = func(body []byte, fast proto.Message, full func(proto.Message) error) {
		if benchmarking() {
			return
		}
		fastDecodeChecked.Add(1)
		if err := fastDecodeAgrees(body, fast, full); err != nil {
			panic(err)
		}
	}
}

var fastDecodeChecked atomic.Int64

func benchmarking() bool {
	f := flag.Lookup("test.bench")
	return f != nil && f.Value.String() != ""
}

var gatewayUnmarshal = gatewayMarshaler.Marshaler.(*directJSONPb).UnmarshalOptions

// fastDecodeAgrees compares what the fast parser decoded from body with
// what the protojson path makes of it: both must accept and agree to the
// byte.
func fastDecodeAgrees(body []byte, fast proto.Message, full func(proto.Message) error) error {
	want := fast.ProtoReflect().New().Interface()
	if err := full(want); err != nil {
		return fmt.Errorf("the fast parser accepts a body the protojson path refuses (%v): %q", err, excerpt(body))
	}
	det := proto.MarshalOptions{Deterministic: true}
	g, _ := det.Marshal(fast)
	w, _ := det.Marshal(want)
	if !proto.Equal(fast, want) || !bytes.Equal(g, w) {
		return fmt.Errorf("the fast parser decodes %q\nas   %v\nnot  %v", excerpt(body), fast, want)
	}
	return nil
}

func excerpt(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

var webhookRequests = []func() proto.Message{
	func() proto.Message { return &ibmailv1.IngestDeliveryReportsRequest{} },
	func() proto.Message { return &ibmailv1.IngestTrackingReportsRequest{} },
	func() proto.Message { return &ibmailv1.IngestPlatformEventsRequest{} },
}

// differ decodes body as each webhook's request with the fast parser and,
// where it accepts, checks it against the protojson path; where it
// declines, that it left the message empty. It returns how many accepted.
func differ(t testing.TB, body []byte) int {
	t.Helper()
	accepted := 0
	for _, newReq := range webhookRequests {
		fast := newReq()
		if !decodeWebhookFast(body, fast) {
			if !proto.Equal(fast, newReq()) {
				t.Fatalf("the fast parser declined %q but left %v", excerpt(body), fast)
			}
			continue
		}
		accepted++
		if err := fastDecodeAgrees(body, fast, func(into proto.Message) error { return decodeRequestBodyFull(gatewayUnmarshal, body, into) }); err != nil {
			t.Fatal(err)
		}
	}
	return accepted
}

const (
	diffDelivery = `{"bulkId":"b-1","messageId":"m-1","to":"w1@example.com","sentAt":"2024-05-01T09:59:58.123+0000",
"doneAt":"2024-05-01T10:00:00.000+0000","smsCount":1,"attemptCount":1,"timeToFirstAttempt":"5",
"price":{"pricePerMessage":0.01,"currency":"EUR"},
"status":{"id":4,"groupId":2,"groupName":"UNDELIVERABLE","name":"UNDELIVERABLE_REJECTED_OPERATOR","description":"rejected"},
"error":{"id":6012,"name":"EC_HARD_BOUNCE","description":"hard bounce","groupId":2,"groupName":"BOUNCED","permanent":true},
"callbackData":"{\"campaign\":\"c-1\",\"ibmailSendId\":\"s-1\"}","applicationId":"app","entityId":"ent","campaignReferenceId":"cr-1",
"browserLink":"https://example.com/b","sendingIp":"192.0.2.1","smtp":{"response":"550 5.1.1 user unknown"}}`
	diffTracking = `{"notificationType":"CLICKED","eventId":"ev-1","domain":"example.com","recipient":"t1@example.com",
"url":"https://example.com/x","sendDateTime":1704106800000,"messageId":"tm-1","bulkId":"tb-1",
"callbackData":"{\"campaign\":\"c-1\"}","recipientInfo":{"deviceType":"Phone","os":"iOS 12","deviceName":"Apple"},
"geoLocation":{"countryName":"France","city":"Paris"},"campaignReferenceId":"cr-1","entityId":"ent","applicationId":"app"}`
	diffPlatform = `{"eventId":"pe-1","createdAt":"1767308400000","eventDetails":{"type":"HIGH_BOUNCE_RATE_WARNING",
"accountKey":"8F0792F86035A9F4290821F1EE6BC06A","domain":"d1.example.com","warnThreshold":3,"bounceRate":4.6,"scope":"HOURLY"}}`
)

// fastAccepted are bodies of the forms Infobip and clients send, which the
// fast parser must take (and decode as protojson does).
var fastAccepted = []string{
	string(sandbox.ExampleDeliveryReports("m", 1, 1)),
	string(sandbox.ExampleDeliveryReports("m", 2, 100)),
	`{"results":[` + diffDelivery + `]}`,
	`{"results":[` + diffDelivery + "," + diffDelivery + `]}`,
	`{"results":[]}`, `{"results":null}`, `{}`, ` { "results" : [ { } ] } `,
	`{"results":[{"message_id":"snake","bulk_id":"b","done_at":"x","time_to_first_attempt":-0,"sms_count":-2147483648}]}`,
	`{"results":[{"messageId":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t","to":"é😀"}],"extra":{"a":[1,2.5e-3,true,false,null,{"b":"c"}]}}`,
	`{"results":[{"price":{"pricePerMessage":-0},"status":null,"error":{},"smtp":{"response":null}}]}`,
	`{"results":[{"price":{"pricePerMessage":1E+2}}]}`,
	`{"results":[{"unknown":1,"unknown":2}]}`,
	diffTracking, `[` + diffTracking + `,` + diffTracking + `]`, `{"reports":[` + diffTracking + `]}`, `[]`,
	`{"eventId":"e","messageId":12345}`, `{"eventId":"e","messageId":-1.5e3}`, `{"eventId":"e","messageId":12abc}`,
	`{"eventId":"e","geoLocationInfo":{"city":"Lyon"}}`, `{"eventId":"e","geoLocationInfo":{"city":"Lyon"},"geoLocation":{"city":"Nice"}}`,
	`{"eventId":"e","geoLocation":{"city":"Nice"},"geoLocationInfo":5}`, `{"eventId":"e","geoLocationInfo":null}`,
	`{"reports":[{"eventId":"e","geoLocationInfo":{"city":"Lyon"}}]}`,
	`{"eventId":"e","report\u0073":[]}`, `{"event_id":"e","send_date_time":"1704106800000","recipient_info":{"device_type":"x"}}`,
	diffPlatform, `[` + diffPlatform + `,` + diffPlatform + `]`, `{"events":[` + diffPlatform + `]}`,
	`{"eventId":"p","created_at":1767308400000,"event_details":{"bounce_rate":0,"warn_threshold":"x"}}`,
}

// fastDeclined are bodies the fast parser leaves to protojson, for the
// refusal protojson gives or a form only it reads.
var fastDeclined = []string{
	``, `null`, `5`, `"x"`, `{`, `{"results":[}`, `{"results":[{"messageId":5}]}`, `{"results":[{"messageId":"a","messageId":"b"}]}`,
	`{"results":[{"messageId":"a","message_id":"b"}]}`, `{"results":[{"smsCount":1.0}]}`, `{"results":[{"smsCount":"1e2"}]}`,
	`{"results":[{"smsCount":2147483648}]}`, `{"results":[{"smsCount":" 1"}]}`, `{"results":[{"smsCount":01}]}`,
	`{"results":[{"price":{"pricePerMessage":"NaN"}}]}`, `{"results":[{"price":{"pricePerMessage":1e999}}]}`,
	`{"results":[{"to":"\ud800"}]}`, `{"results":[{"to":"\udc00\ud800"}]}`, "{\"results\":[{\"to\":\"\xff\"}]}",
	"{\"results\":[{\"to\":\"a\x01\"}]}", `{"results":[{"[google.api.http]":1}]}`, `{"results":[],"undecodableResults":[]}`,
	`{"results":[null]}`, `{"results":[5]}`, `{"results":{}}`, `{"results":[]} x`, "\xef\xbb\xbf{}", `{"results":[{"to":"x"},]}`,
	`{"results":[{"error":{"permanent":"true"}}]}`, `{"results":[{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}]}`,
	`{"eventId":"e","messageId":-}`, `{"eventId":"e","messageId":1\u0041}`, `{"eventId":"e","message\u0049d":5}`,
	`{"eventId":"e","geoLocationInfo":{},"geoLocationInfo":{}}`, `{"eventId":"e","geoLocationInfo":{},"geo_location":{}}`,
	`{"eventId":"e","geoLocationInfo":5}`, `{"reports":[{"messageId":5}]}`, `[5]`, `[{"eventId":5}]`,
	`{"reports":[],"undecodable_reports":[]}`, `{"events":[],"undecodableEvents":[]}`, `{"eventId":5,"reports":[]}`,
}

func TestFastDecodeDifferential(t *testing.T) {
	for _, body := range fastAccepted {
		if differ(t, []byte(body)) == 0 {
			t.Errorf("no webhook's fast parser takes %q", excerpt([]byte(body)))
		}
	}
	for _, body := range fastDeclined {
		for _, newReq := range webhookRequests {
			m := newReq()
			if decodeWebhookFast([]byte(body), m) {
				if err := fastDecodeAgrees([]byte(body), m, func(into proto.Message) error { return decodeRequestBodyFull(gatewayUnmarshal, []byte(body), into) }); err != nil {
					t.Error(err)
				}
				if _, isDelivery := m.(*ibmailv1.IngestDeliveryReportsRequest); isDelivery && strings.HasPrefix(body, `{"results"`) {
					t.Errorf("the fast parser takes %q, which it should leave to protojson", body)
				}
			}
		}
	}
}

// TestFastDecodeMutations checks the fast parser against protojson on
// random mutations of valid bodies: equal messages, or the fast parser
// declines (and protojson's answer, refusal or not, stands).
func TestFastDecodeMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 1))
	tokens := []string{`"`, `\`, `{`, `}`, `[`, `]`, `,`, `:`, `null`, `-`, `0`, `1e5`, `.5`, `\u00e9`, `\ud83d\ude00`, `\ud800`,
		"\xff", " ", `"messageId":7,`, `"geoLocationInfo":{"city":"x"},`, `"reports":[],`, `"x":{},`, `true`, `"5"`, `"`}
	seeds := append([]string{`{"results":[` + diffDelivery + `]}`}, fastAccepted...)
	n := 4000
	if testing.Short() {
		n = 500
	}
	accepted := 0
	for range n {
		b := []byte(seeds[rng.IntN(len(seeds))])
		for range 1 + rng.IntN(3) {
			if len(b) == 0 {
				break
			}
			i := rng.IntN(len(b))
			switch rng.IntN(4) {
			case 0:
				b = append(b[:i:i], append([]byte(tokens[rng.IntN(len(tokens))]), b[i:]...)...)
			case 1:
				b = append(b[:i:i], b[min(len(b), i+1+rng.IntN(8)):]...)
			case 2:
				b[i] = byte(rng.IntN(256))
			case 3:
				j := min(len(b), i+1+rng.IntN(16))
				b = append(b[:j:j], append(bytes.Clone(b[i:j]), b[j:]...)...)
			}
		}
		accepted += differ(t, b)
	}
	t.Logf("%d mutated bodies, %d decodes taken by the fast parser, all as protojson", n, accepted)
}

func FuzzFastDecode(f *testing.F) {
	for _, s := range append(fastAccepted, fastDeclined...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { differ(t, body) })
}

// TestFastDecodeFields sets every field of the webhooks' messages, by its
// JSON name and by its proto name, and checks the fast parser puts it
// where protojson does: the parser's field numbers are written by hand.
func TestFastDecodeFields(t *testing.T) {
	for _, newReq := range webhookRequests {
		md := newReq().ProtoReflect().Descriptor()
		items := md.Fields().Get(0) // results, reports, events
		for _, body := range fieldBodies(items.Message(), 0) {
			for _, b := range []string{`{"` + items.JSONName() + `":[` + body + `]}`, `[` + body + `]`} {
				m := newReq()
				if !decodeWebhookFast([]byte(b), m) {
					if b[0] == '[' && md.FullName() == (&ibmailv1.IngestDeliveryReportsRequest{}).ProtoReflect().Descriptor().FullName() {
						continue // delivery reports come in {"results":...} only
					}
					t.Errorf("%s: the fast parser declines %s", md.Name(), b)
					continue
				}
				if err := fastDecodeAgrees([]byte(b), m, func(into proto.Message) error { return decodeRequestBodyFull(gatewayUnmarshal, []byte(b), into) }); err != nil {
					t.Error(err)
				}
				if proto.Equal(m, newReq()) {
					t.Errorf("%s: %s sets nothing", md.Name(), b)
				}
			}
		}
	}
}

// fieldBodies are JSON objects of md, each setting one field (in a message
// field, one of its fields) by one of its names.
func fieldBodies(md protoreflect.MessageDescriptor, depth int) []string {
	var out []string
	fs := md.Fields()
	for i := range fs.Len() {
		fd := fs.Get(i)
		var values []string
		switch fd.Kind() {
		case protoreflect.StringKind:
			values = []string{`"v-` + string(fd.Name()) + `"`}
		case protoreflect.Int32Kind:
			values = []string{fmt.Sprint(fd.Number() + 100), `"-7"`}
		case protoreflect.Int64Kind:
			values = []string{fmt.Sprint(int64(fd.Number()) + 1<<40), `"9"`}
		case protoreflect.DoubleKind:
			values = []string{fmt.Sprintf("%d.25", fd.Number())}
		case protoreflect.BoolKind:
			values = []string{`true`}
		case protoreflect.MessageKind:
			if depth < 2 {
				values = append([]string{`{}`}, fieldBodies(fd.Message(), depth+1)...)
			}
		}
		for _, name := range []string{fd.JSONName(), fd.TextName()} {
			for _, v := range values {
				out = append(out, `{"`+name+`":`+v+`}`)
			}
		}
	}
	return out
}

// BenchmarkDecodeDeliveryReports decodes a 100-report delivery-report body
// as the gateway did (protojson, whole) and as it does now.
func BenchmarkDecodeDeliveryReports(b *testing.B) {
	body := sandbox.ExampleDeliveryReports("bench", 1, 100)
	run := func(b *testing.B, decode func(proto.Message) error) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req ibmailv1.IngestDeliveryReportsRequest
			if err := decode(&req); err != nil || len(req.Results) != 100 {
				b.Fatalf("%v, %d reports", err, len(req.Results))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/report")
	}
	b.Run("decoder=protojson", func(b *testing.B) {
		run(b, func(m proto.Message) error { return decodeRequestBodyFull(gatewayUnmarshal, body, m) })
	})
	b.Run("decoder=fast", func(b *testing.B) {
		run(b, func(m proto.Message) error { return decodeRequestBody(gatewayUnmarshal, body, m) })
	})
}

// TestParseCallbackFast checks the callbackData reader against
// encoding/json on the forms sends write, odd ones, and mutations.
func TestParseCallbackFast(t *testing.T) {
	reference := func(data string) callbackFields {
		var f callbackFields
		if cb := strings.TrimSpace(data); strings.HasPrefix(cb, "{") {
			if json.Unmarshal([]byte(cb), &f) != nil {
				return callbackFields{}
			}
		}
		return f
	}
	corpus := []string{
		`{"profileId":"p-1"}`, `{"profileId":"p-1","ibmailSendId":"s-1"}`, ` {"ibmailSendId":"s","x":[1,{"y":null}]} `,
		`{"profileId":null}`, `{"profileId":"a","profileId":null}`, `{"profileId":"a","profileId":"b"}`, `{"PROFILEID":"p"}`,
		`{"profileId":5}`, `{"profileId":"\u00e9\ud83d\ude00"}`, `{"profileId":"\ud800"}`, "{\"profileId\":\"\xff\"}", `{}`, `{`,
		`{"profileId":"p"} x`, `plain text`, `{"campaign":"c-1"}`, `{"ſ":1}`, `{"profileId":"p",}`,
	}
	rng := rand.New(rand.NewPCG(11, 2))
	for range 3000 {
		b := []byte(corpus[rng.IntN(len(corpus))])
		if len(b) > 0 {
			i := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b = append(b[:i:i], b[min(len(b), i+1+rng.IntN(4)):]...)
			case 1:
				b[i] = byte(rng.IntN(256))
			case 2:
				b = append(b[:i:i], append([]byte(`"profileId":"q",`), b[i:]...)...)
			}
		}
		corpus = append(corpus, string(b))
	}
	fast := 0
	for _, data := range corpus {
		if _, ok := parseCallbackFast(strings.TrimSpace(data)); ok {
			fast++
		}
		if got, want := parseCallbackData(data), reference(data); got != want {
			t.Errorf("parseCallbackData(%q) = %+v, want %+v", data, got, want)
		}
	}
	if _, ok := parseCallbackFast(`{"profileId":"p-1","ibmailSendId":"s-1"}`); !ok {
		t.Error("the fast reader declines a send's own callbackData")
	}
	t.Logf("%d of %d callbackData read by the fast reader, all as encoding/json", fast, len(corpus))
}
