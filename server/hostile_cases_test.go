package server_test

// The inputs of the hostile-input suite (hostile_test.go): one valid request
// per gRPC method, from which every case is derived, and the classes of
// hostile values, per kind of field. A route or method without a baseline
// here fails the suite, so that a new route gets the same treatment.

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ibmail/ibmail/classifier"
)

// The credentials of the hostile suite's server. They and everything that
// starts with secretMarker must never appear in a response or the log.
const (
	hostileAdminToken = "hk-SECRET-admin-token-0123456789abcdef"
	hostileAPIKey     = "hk-SECRET-apikey-0123456789abcdef"
	secretMarker      = "hk-SECRET-"
)

// hostileBaseline is a valid request of one gRPC method, as protojson, with
// {{u}} (unique per case), {{send}} (a send of the fixtures), {{origin}}
// (the stub Infobip origin) substituted; REST requests are derived from it
// through the OpenAPI description (path, query and body parameters).
type hostileBaseline struct {
	request string
	// want is the HTTP status the baseline itself gets: 200 but for the
	// deletes, which name something absent so that the fixtures stay.
	want int
}

// reportJSON is report 0 of a webhook body, the one the cases change; its
// profile is its address (callbackData names no profileId, so that `to`
// is the id a hostile `to` becomes).
const reportJSON = `{"bulkId":"b-{{u}}","messageId":"m-{{u}}","to":"w{{u}}@example.com","sentAt":"2024-05-01T09:59:58.123+0000",
"doneAt":"2024-05-01T10:00:00.000+0000","smsCount":1,"attemptCount":1,"timeToFirstAttempt":"5",
"price":{"pricePerMessage":0.01,"currency":"EUR"},
"status":{"id":4,"groupId":2,"groupName":"UNDELIVERABLE","name":"UNDELIVERABLE_REJECTED_OPERATOR","description":"rejected"},
"error":{"id":6012,"name":"EC_HARD_BOUNCE","description":"hard bounce","groupId":2,"groupName":"BOUNCED","permanent":true},
"callbackData":"{\"campaign\":\"c-{{u}}\"}","applicationId":"app","entityId":"ent","campaignReferenceId":"cr-{{u}}",
"browserLink":"https://example.com/b","sendingIp":"192.0.2.1","smtp":{"response":"550 5.1.1 user unknown"}}`

// controlJSON is report 1 of a webhook body, never changed: it must be
// stored whatever report 0 holds (defects 1 and 12).
const controlJSON = `{"messageId":"m2-{{u}}","to":"c{{u}}@example.com","doneAt":"2024-05-01T10:00:00.000+0000",
"status":{"id":4,"groupId":2,"groupName":"UNDELIVERABLE","name":"UNDELIVERABLE_REJECTED_OPERATOR"},
"error":{"id":6099,"name":"EC_SOFT","groupId":3,"groupName":"SOFT","permanent":false}}`

// trackingJSON is a tracking report of the tracking webhook's body.
const trackingJSON = `{"notificationType":"CLICKED","eventId":"ev-{{u}}","domain":"example.com","recipient":"t{{u}}@example.com",
"url":"https://example.com/x","sendDateTime":1704106800000,"messageId":"tm-{{u}}","bulkId":"tb-{{u}}",
"callbackData":"{\"campaign\":\"c-{{u}}\"}","recipientInfo":{"deviceType":"Phone","os":"iOS 12","deviceName":"Apple"},
"geoLocation":{"countryName":"France","city":"Paris"},"campaignReferenceId":"cr-{{u}}","entityId":"ent","applicationId":"app"}`

// platformJSON is a platform event of the platform-events webhook's body:
// a warning, for a domain of its own, so that no fixture is held.
const platformJSON = `{"eventId":"pe-{{u}}","createdAt":"1767308400000","eventDetails":{"type":"HIGH_BOUNCE_RATE_WARNING",
"accountKey":"8F0792F86035A9F4290821F1EE6BC06A","domain":"d{{u}}.example.com","warnThreshold":3,"bounceRate":4.6,"scope":"HOURLY"}}`

// trackingControlJSON is item 1 of the tracking webhook's body, never
// changed: it must be stored whatever item 0 holds, as controlJSON is.
const trackingControlJSON = `{"notificationType":"OPENED","eventId":"evc-{{u}}","domain":"example.com",
"recipient":"tc{{u}}@example.com","messageId":"tmc-{{u}}"}`

// platformControlJSON is item 1 of the platform-events webhook's body,
// never changed, a warning of a domain of its own: it must be stored
// whatever item 0 holds.
const platformControlJSON = `{"eventId":"pc-{{u}}","createdAt":"1767308400000","eventDetails":{"type":"HIGH_BOUNCE_RATE_WARNING",
"domain":"c{{u}}.example.com","warnThreshold":3,"bounceRate":3.5,"scope":"DAILY"}}`

// hostileBaselines holds one valid request for every ibmail.v1 method.
var hostileBaselines = map[string]hostileBaseline{
	"/ibmail.v1.ClassifierService/ClassifyReport":            {request: `{"report":` + reportJSON + `}`},
	"/ibmail.v1.ClassifierService/BatchClassifyReports":      {request: `{"reports":[` + reportJSON + `]}`},
	"/ibmail.v1.DeliveryReportService/IngestDeliveryReports": {request: `{"results":[` + reportJSON + `,` + controlJSON + `]}`},
	"/ibmail.v1.DeliveryReportService/ListDeliveryReports":   {request: `{"pageSize":10,"outcome":"REPORT_OUTCOME_EVENT"}`},
	"/ibmail.v1.DeliveryReportService/ListRejectedPayloads":  {request: `{"pageSize":10}`},
	"/ibmail.v1.DeliveryReportService/GetRejectedPayload":    {request: `{"rejectedPayloadId":"999999999"}`, want: 404},
	"/ibmail.v1.DeliveryReportService/IngestTrackingReports": {request: `{"reports":[` + trackingJSON + `,` + trackingControlJSON + `]}`},
	"/ibmail.v1.DeliveryReportService/ListTrackingReports":   {request: `{"pageSize":10,"outcome":"REPORT_OUTCOME_EVENT"}`},
	"/ibmail.v1.DeliveryReportService/IngestPlatformEvents":  {request: `{"events":[` + platformJSON + `,` + platformControlJSON + `]}`},
	"/ibmail.v1.ClassifierService/ClassifyTrackingReport":    {request: `{"report":` + trackingJSON + `}`},
	"/ibmail.v1.SendingDomainService/ListSendingDomains":     {request: `{"pageSize":10}`},
	"/ibmail.v1.SendingDomainService/GetSendingDomain":       {request: `{"domain":"example.com"}`},
	"/ibmail.v1.SendingDomainService/UnblockSendingDomain":   {request: `{"domain":"gone.example.com"}`, want: 404},
	"/ibmail.v1.ProfileService/ListProfileEvents":            {request: `{"profileId":"fx@example.com","pageSize":10,"eventNames":["newsletter.hardbounce"]}`},
	"/ibmail.v1.ProfileService/SearchProfiles": {request: `{"eventNames":["newsletter.hardbounce"],"since":"2024-01-01T00:00:00Z",
"until":"2025-01-01T00:00:00Z","pageSize":10}`},
	"/ibmail.v1.EventService/WatchEvents": {request: `{"eventNames":["newsletter.hardbounce"],"afterPosition":"0"}`},
	"/ibmail.v1.SendService/CreateSend": {request: `{"senderId":"hs","subject":"Hello {{name}}","html":"<p>Hi {{name}}</p>","text":"Hi",
"recipients":[{"profileId":"sp-{{u}}","email":"s{{u}}@example.com","placeholders":{"name":"Ann"}}],
"defaultPlaceholders":{"name":"friend"},"campaignId":"c-{{u}}","idempotencyKey":"k-{{u}}"}`},
	"/ibmail.v1.SendService/GetSend":            {request: `{"sendId":"{{send}}"}`},
	"/ibmail.v1.SendService/ListSends":          {request: `{"pageSize":10}`},
	"/ibmail.v1.SendService/ListSendRecipients": {request: `{"sendId":"{{send}}","pageSize":10,"state":"RECIPIENT_STATE_PENDING"}`},
	"/ibmail.v1.ConnectionService/CreateConnection": {request: `{"connection":{"id":"hc-{{u}}","displayName":"Hostile {{u}}",
"apiKey":"` + hostileAPIKey + `","baseUrl":"{{origin}}","applicationId":"app","entityId":"ent","rateLimit":10}}`},
	"/ibmail.v1.ConnectionService/GetConnection":               {request: `{"connectionId":"hc"}`},
	"/ibmail.v1.ConnectionService/ListConnections":             {request: `{"pageSize":10}`},
	"/ibmail.v1.ConnectionService/UpdateConnection":            {request: `{"connectionId":"hc","connection":{"displayName":"Hostile"},"updateMask":"displayName"}`},
	"/ibmail.v1.ConnectionService/DeleteConnection":            {request: `{"connectionId":"hc-gone"}`, want: 404},
	"/ibmail.v1.ConnectionService/TestConnection":              {request: `{"connectionId":"hc"}`},
	"/ibmail.v1.ConnectionService/RotateWebhookSecret":         {request: `{"connectionId":"hc","gracePeriod":"3600s"}`},
	"/ibmail.v1.ConnectionService/RetirePreviousWebhookSecret": {request: `{"connectionId":"hc"}`},
	// The harness configures the server-wide secret, which is then not the
	// store's to rotate: FAILED_PRECONDITION, answered 400.
	"/ibmail.v1.ConnectionService/RotateServerWebhookSecret":         {request: `{"gracePeriod":"3600s"}`, want: 400},
	"/ibmail.v1.ConnectionService/RetirePreviousServerWebhookSecret": {request: `{}`, want: 400},
	"/ibmail.v1.SenderService/CreateSender": {request: `{"sender":{"id":"hs-{{u}}","connectionId":"hc","fromAddress":"news@example.com",
"fromName":"News","replyTo":"reply@example.com"}}`},
	"/ibmail.v1.SenderService/GetSender":               {request: `{"senderId":"hs"}`},
	"/ibmail.v1.SenderService/ListSenders":             {request: `{"pageSize":10,"connectionId":"hc"}`},
	"/ibmail.v1.SenderService/DeleteSender":            {request: `{"senderId":"hs-gone"}`, want: 404},
	"/ibmail.v1.SuppressionService/ListSuppressions":   {request: `{"pageSize":10}`},
	"/ibmail.v1.SuppressionService/DeleteSuppression":  {request: `{"email":"gone@example.com"}`, want: 404},
	"/ibmail.v1.SuppressionService/ImportSuppressions": {request: `{"format":"SUPPRESSION_FORMAT_CSV","content":"ZW1haWwscmVhc29uCmltcG9ydGVkQGV4YW1wbGUuY29tLGJvdW5jZWQK","defaultReason":"moved"}`},
	"/ibmail.v1.SuppressionService/ExportSuppressions": {request: `{"format":"SUPPRESSION_FORMAT_JSON","includeExpired":true}`},
	"/ibmail.v1.RuleService/GetRules":                  {request: `{}`},
	"/ibmail.v1.RuleService/ListRuleVersions":          {request: `{"pageSize":10}`},
	"/ibmail.v1.RuleService/GetRuleVersion":            {request: `{"version":"999999"}`, want: 404},
	// The update is based on a version that does not exist, so that the
	// baseline and the cases that keep it store nothing; a case that makes
	// it valid (no base) stores the built-in rules, which change nothing.
	"/ibmail.v1.RuleService/UpdateRules":        {request: `{"rules":` + defaultRuleSetJSON + `,"baseVersion":"999999","comment":"c-{{u}}"}`, want: 409},
	"/ibmail.v1.RuleService/RestoreRuleVersion": {request: `{"version":"999999","comment":"c-{{u}}"}`, want: 404},
	// A dry run over a window before any report: each case stores an
	// operation, which examines nothing.
	"/ibmail.v1.DeliveryReportService/ReclassifyReports": {request: `{"window":{"startTime":"2001-01-01T00:00:00Z","endTime":"2001-01-02T00:00:00Z"},
"outcomes":["REPORT_OUTCOME_UNCLASSIFIED"],"dryRun":true,"requestId":"r-{{u}}"}`},
	"/ibmail.v1.OperationService/GetOperation":    {request: `{"name":"operations/999999"}`, want: 404},
	"/ibmail.v1.OperationService/ListOperations":  {request: `{"pageSize":10}`},
	"/ibmail.v1.AccessService/GetCaller":          {request: `{}`},
	"/ibmail.v1.OperationService/CancelOperation": {request: `{"name":"operations/999999"}`, want: 404},
	"/ibmail.v1.RuleService/TestRules": {request: `{"rules":` + defaultRuleSetJSON + `,"reports":[` + reportJSON + `],
"trackingReports":[` + trackingJSON + `],"lastStored":10,"storedOutcome":"REPORT_OUTCOME_UNCLASSIFIED"}`},
}

// defaultRuleSetJSON is the built-in rule set as the RuleService takes it.
var defaultRuleSetJSON = func() string {
	var b strings.Builder
	b.WriteString(`{"rules":[`)
	for i, r := range classifier.DefaultRules() {
		if i > 0 {
			b.WriteString(",")
		}
		names, _ := json.Marshal(r.ErrorNames)
		fmt.Fprintf(&b, `{"groupId":%d,"groupName":%q,"errorNames":%s,"event":%q}`, r.GroupID, r.GroupName, names, r.Event)
	}
	b.WriteString(`],"trackingRules":[`)
	for i, r := range classifier.DefaultTrackingRules() {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"notificationType":%q,"event":%q,"suppress":%q}`, r.NotificationType, r.Event, r.Suppress)
	}
	b.WriteString(`],"softBouncePolicy":{"limit":5,"window":"2592000s"},"suppressionLifetimes":[{"cause":"soft-bounce limit","lifetime":"2592000s"}]}`)
	return b.String()
}()

// embeddedFields are JSON documents carried in a string field, which the
// OpenAPI description cannot describe: the cases change their fields too.
var embeddedFields = map[string][]string{
	"callbackData": {"profileId", "ibmailSendId"},
}

// Strictness: beyond "no 5xx, a proper error", some fields must refuse some
// classes. idFields become profile ids (defect 9: the rules of a send's
// profile ids, wherever an id enters); headerFields reach a mail header
// (defect 11); eventTimeFields become event times (defect 1: from 2000 to a
// day after arrival).
var (
	idFields        = map[string]bool{"profileId": true, "to": true, "recipient": true}
	headerFields    = map[string]bool{"subject": true, "fromName": true, "fromAddress": true, "replyTo": true}
	eventTimeFields = map[string]bool{"doneAt": true}
	// secretFields hold secrets: their hostile values carry secretMarker, so
	// that an echo anywhere is found.
	secretFields = map[string]bool{"apiKey": true}
)

// value is a hostile value: a Go string (JSON-encoded for REST, set as is
// over gRPC) or, with raw set, the exact JSON text (wrong types, numbers
// JSON cannot hold, invalid UTF-8).
type value struct {
	str   string
	raw   string
	isRaw bool
}

func str(s string) value     { return value{str: s} }
func rawJSON(s string) value { return value{raw: s, isRaw: true} }

// stringClass is a hostile value for a string field.
type stringClass struct {
	name string
	v    func(secret bool) value
	// refusedInIDs / refusedInHeaders: the class must be refused in those
	// fields (see idFields, headerFields).
	refusedInIDs, refusedInHeaders bool
	// restOnly: the class exists only in JSON (wrong types, invalid UTF-8
	// over gRPC is sent as raw wire instead, see invalidUTF8Class).
	restOnly bool
	// storage: the class can break a store, so it runs on PostgreSQL too.
	storage bool
	// oncePerRoute: the class is costly, so only the first string field of
	// each route gets it.
	oncePerRoute bool
}

const invalidUTF8Class = "invalid-utf8"

// secretOr prefixes a secret field's value with secretMarker.
func secretOr(secret bool, s string) string {
	if secret {
		return secretMarker + s
	}
	return s
}

func plain(s string) func(bool) value {
	return func(secret bool) value { return str(secretOr(secret, s)) }
}

var stringClasses = []stringClass{
	{name: "nul", v: plain("x\x00y"), refusedInIDs: true, refusedInHeaders: true, storage: true},
	{name: "cr-lf", v: plain("x\r\nBcc: injected@example.com"), refusedInIDs: true, refusedInHeaders: true, storage: true},
	{name: "control", v: plain("x\x1b[31m\x07\x7fy"), refusedInIDs: true, refusedInHeaders: true, storage: true},
	{name: "c1-control", v: plain("x\u0085\u009by"), refusedInIDs: true, refusedInHeaders: true},
	{name: "bidi-U+202E", v: plain("x\u202egpj.exe"), refusedInIDs: true, storage: true},
	{name: "zero-width-and-bom", v: plain("\ufeffx\u200by")},
	{name: invalidUTF8Class, v: func(secret bool) value { return rawJSON(`"` + secretOr(secret, "x\xff\xfey") + `"`) },
		refusedInIDs: true, refusedInHeaders: true, storage: true},
	{name: "long-64KiB", v: plain(strings.Repeat("x", 64<<10)), refusedInIDs: true, refusedInHeaders: true, storage: true},
	{name: "long-8MiB", v: plain(strings.Repeat("x", 8<<20)), refusedInIDs: true, refusedInHeaders: true, oncePerRoute: true},
	{name: "empty", v: plain("")},
	{name: "blank", v: plain("   ")},
	{name: "slash", v: plain("x/y"), storage: true},
	{name: "escaped-slash", v: plain("x%2Fy")},
	{name: "dot-dot", v: plain("..")},
	{name: "spaces", v: plain(" x y ")},
	{name: "unicode", v: plain("Zoë-Ünïcødé-日本-😀"), storage: true},
	{name: "wrong-type-number", v: func(bool) value { return rawJSON(`12345`) }, restOnly: true},
	{name: "wrong-type-object", v: func(bool) value { return rawJSON(`{"a":1}`) }, restOnly: true},
	{name: "wrong-type-array", v: func(bool) value { return rawJSON(`["a"]`) }, restOnly: true},
	{name: "null", v: func(bool) value { return rawJSON(`null`) }, restOnly: true},
}

// numberClass is a hostile value for a number field, as JSON text.
type numberClass struct{ name, json string }

var int32Classes = []numberClass{
	{"int32-overflow", `2147483648`}, {"int32-underflow", `-2147483649`}, {"int64-overflow", `9223372036854775808`},
	{"huge", `99999999999`}, {"negative", `-1`}, {"fraction", `1.5`}, {"nan", `"NaN"`}, {"non-numeric", `"abc"`},
	{"exponent-overflow", `1e400`}, {"wrong-type-bool", `true`},
}

var int64Classes = []numberClass{
	{"int64-overflow", `"9223372036854775808"`}, {"int64-underflow", `"-9223372036854775809"`}, {"huge-exponent", `"1e30"`},
	{"negative", `"-1"`}, {"nan", `"NaN"`}, {"fraction", `1.5`}, {"exponent-overflow", `1e400`},
}

var doubleClasses = []numberClass{
	{"nan", `"NaN"`}, {"infinity", `"Infinity"`}, {"minus-infinity", `"-Infinity"`}, {"overflow", `1e309`},
	{"negative", `-1`}, {"non-numeric", `"abc"`},
}

var enumClasses = []numberClass{
	{"unknown-name", `"NOT_A_VALUE"`}, {"unknown-number", `999`}, {"negative-number", `-1`}, {"empty", `""`}, {"fraction", `1.5`},
}

var boolClasses = []numberClass{{"string", `"yes"`}, {"number", `2`}}

// timestampClasses are hostile google.protobuf.Timestamp values (RFC 3339).
var timestampClasses = []numberClass{
	{"year-0", `"0000-01-01T00:00:00Z"`}, {"year-10000", `"10000-01-01T00:00:00Z"`},
	{"max", `"9999-12-31T23:59:59.999999999Z"`}, {"min", `"0001-01-01T00:00:00Z"`},
	{"before-2000", `"1999-12-31T23:59:59Z"`}, {"far-future", `"2999-01-01T00:00:00Z"`},
	{"offset", `"2024-05-01T10:00:00+14:00"`}, {"no-such-day", `"2024-02-30T00:00:00Z"`},
	{"garbage", `"yesterday"`}, {"wrong-type", `12345`},
}

// infobipTimeClasses are hostile values of the report times Infobip writes
// as strings (doneAt, sentAt). strict: outside what a real report carries.
type timeClass struct {
	name   string
	v      func(now time.Time) string
	strict bool
}

var infobipTimeClasses = []timeClass{
	{"year-0", func(time.Time) string { return "0000-01-01T00:00:00.000+0000" }, true},
	{"year-9999-offset", func(time.Time) string { return "9999-12-31T23:59:59.999-2359" }, true},
	{"before-2000", func(time.Time) string { return "1999-12-31T23:59:59.999+0000" }, true},
	{"far-future", func(time.Time) string { return "2999-01-01T00:00:00.000+0000" }, true},
	{"two-days-ahead", func(now time.Time) string {
		return now.Add(48 * time.Hour).UTC().Format("2006-01-02T15:04:05.000-0700")
	}, true},
	{"offset-out-of-range", func(time.Time) string { return "2024-05-01T10:00:00.000+9999" }, false},
	{"garbage", func(time.Time) string { return "yesterday" }, false},
}

// epochMillisFields are the times Infobip writes as milliseconds since the
// epoch (int64 fields): a tracking report's sendDateTime, a platform
// event's createdAt. Both must lie from 2000 to a day after arrival.
var epochMillisFields = map[string]bool{"createdAt": true, "sendDateTime": true}

// epochMillisClasses are hostile values of epochMillisFields, as the JSON
// strings protojson writes int64 in. strict: outside what a real report
// carries, so that the item must be refused.
var epochMillisClasses = []timeClass{
	{"before-2000", func(time.Time) string { return "946684799999" }, true},
	{"seconds-not-millis", func(time.Time) string { return "1704106800" }, true},
	{"far-future", func(time.Time) string { return "32503680000000" }, true},
	{"two-days-ahead", func(now time.Time) string { return fmt.Sprint(now.Add(48 * time.Hour).UnixMilli()) }, true},
	{"int64-max", func(time.Time) string { return "9223372036854775807" }, true},
	{"int64-min", func(time.Time) string { return "-9223372036854775808" }, true},
	{"zero", func(time.Time) string { return "0" }, false},
}

// pathClasses are raw path segments, sent as they are.
var pathClasses = []struct {
	name, raw string
	storage   bool
}{
	{"slash", "x/y", false}, {"escaped-slash", "x%2Fy", true}, {"double-escaped-slash", "x%252Fy", false},
	{"dot-dot", "..", false}, {"escaped-dot-dot", "%2E%2E", false}, {"dot", ".", false},
	{"nul", "x%00y", true}, {"space", "x%20y", false}, {"unicode", "%C3%BC-%F0%9F%98%80", true},
	{"invalid-utf8", "%FF%FE", true}, {"cr-lf", "x%0D%0Ay", true}, {"bidi-U+202E", "x%E2%80%AEy", true},
	{"bad-escape", "%zz", false}, {"colon-verb", "x:test", false}, {"semicolon", "x;y", false},
	{"long-64KiB", strings.Repeat("x", 64<<10), true}, {"empty", "", false},
}

// queryClasses are raw query values per parameter kind.
var (
	queryIntClasses    = []string{"-1", "2147483648", "99999999999999999999", "abc", "1.5", "", "0x10", "NaN", "%00", "1e3"}
	queryEnumClasses   = []string{"NOT_A_VALUE", "999", "-1", "%00", "REPORT_OUTCOME_EVENT%00", "1.5"}
	queryBoolClasses   = []string{"yes", "2", "-1", "%00", "true%00", "TRUE1", "1.5"}
	queryStringClasses = []struct {
		name, raw string
		storage   bool
	}{
		{"nul", "x%00y", true}, {"cr-lf", "x%0D%0Ay", true}, {"control", "x%1B%07y", true}, {"bidi-U+202E", "x%E2%80%AEy", true},
		{"invalid-utf8", "%FF%FE", true}, {"long-64KiB", strings.Repeat("x", 64<<10), true}, {"unicode", "%C3%BC%F0%9F%98%80", true},
		{"garbage-token", "!!!not-base64!!!", false}, {"base64-json-garbage", "eyJxIjoiYWJjIn0", false}, {"empty", "", false},
	}
)

// gRPC number extremes: the proto field can hold them, JSON's overflow
// cannot reach it.
var (
	grpcInt32Values  = []int64{math.MinInt32, math.MaxInt32, -1}
	grpcInt64Values  = []int64{math.MinInt64, math.MaxInt64, -1}
	grpcDoubleValues = []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, math.MaxFloat64}
	grpcEnumValues   = []int32{999, -1}
	// grpcTimestamps are Timestamp seconds and nanos: outside the type's
	// range, before 2000 and far ahead.
	grpcTimestamps = []struct {
		name    string
		seconds int64
		nanos   int32
	}{
		{"before-year-1", -62135596801, 0}, {"after-year-9999", 253402300800, 0}, {"negative-nanos", 0, -1},
		{"nanos-overflow", 0, 1e9}, {"before-2000", 946684799, 0}, {"far-future", 32503680000, 0}, {"max", 253402300799, 999999999},
	}
)

func summarize(s string) string {
	if len(s) > 60 {
		return fmt.Sprintf("%q…(%d bytes)", s[:40], len(s))
	}
	return fmt.Sprintf("%q", s)
}
