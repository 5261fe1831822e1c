package server_test

// The hostile-input suite: every route of the server's own OpenAPI
// description and every method of its registered gRPC services gets every
// class of hostile input of hostile_cases_test.go, derived from the schemas
// (each string, number, enum, timestamp and map field, each path and query
// parameter), through the real HTTP and gRPC stack on a real store. After
// each input that may have stored something, every read must still work.
//
// Invariants, for every case: no 5xx (no Internal/Unknown over gRPC); an
// error is a google.rpc.Status with an ErrorInfo of domain ibmail.v1 and a
// reason, and a field error (INVALID_ARGUMENT) a BadRequest naming the
// field; a webhook body is never lost (every report stored or kept as a
// rejected payload, a refused body kept as it arrived); no secret in any
// response or in the log. A route or method without a baseline in
// hostileBaselines fails TestHostileCoverage, as does a webhook missing
// from hostileWebhooks (hostile_webhooks_test.go), which says how each
// webhook authenticates and where its items are found.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/server"
)

// ---------------------------------------------------------------------------
// The environment: a server with caller tokens, a stub Infobip origin, a
// sequencer and the fixtures every baseline refers to.

type hostileEnv struct {
	*testEnv
	t       *testing.T
	client  *http.Client
	origin  string
	sendID  string
	secrets []string // connection webhook secrets learned from responses
	// lastStored is the highest id seen in each webhook's listing, by
	// webhook path (see newStored).
	lastStored map[string]int64
	lastRej    int64 // highest rejected-payload id seen
	api        *openAPI
	failures   int
	// brokenReads counts each broken read, reported once.
	brokenReads map[string]int
	// pendingReads counts the webhook cases since the last readAll, from
	// firstPending to lastPending (see readBackWebhook).
	pendingReads              int
	firstPending, lastPending string
}

func newHostileEnv(t *testing.T, opts ...envOption) *hostileEnv {
	t.Helper()
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}`) //nolint:errcheck
	}))
	t.Cleanup(stub.Close)
	tokens := &server.Tokens{}
	tokens.Add(server.RoleAdmin, hostileAdminToken)
	opts = append([]envOption{withAllowedBaseURL(stub.URL), withSequencer(), withServerOptions(func(o *server.Options) {
		o.Tokens, o.TokenRate = tokens, 1e9
	})}, opts...)
	h := &hostileEnv{
		testEnv: newTestEnv(t, opts...), t: t, origin: stub.URL, lastStored: map[string]int64{},
		client: &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: 4},
		},
	}
	h.api = h.loadOpenAPI()
	h.fixtures()
	return h
}

// restResp is an answer to a REST request.
type restResp struct {
	status int
	header http.Header
	body   []byte
}

func (r restResp) json() map[string]any {
	var m map[string]any
	json.Unmarshal(r.body, &m) //nolint:errcheck // nil for a non-JSON body
	return m
}

func (r restResp) excerpt() string {
	s := string(r.body)
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// send makes a REST request to target (a raw path and query, sent as is).
// It authenticates as the admin (Basic with the server-wide webhook secret
// for a webhook) unless header already holds an Authorization (an empty
// one: none).
func (h *hostileEnv) send(method, target string, header http.Header, body []byte) (restResp, error) {
	u, _ := url.Parse(h.rest.URL)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.rest.URL+"/", rd)
	if err != nil {
		return restResp{}, err
	}
	req.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: target}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if _, ok := req.Header["Authorization"]; !ok {
		req.Header.Set("Authorization", validAuth(target))
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return restResp{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := restResp{status: resp.StatusCode, header: resp.Header, body: b}
	h.scanSecrets("response to "+method+" "+trim(target), b)
	return out, nil
}

// mustSend is send for the suite's own reads and fixtures: any failure to
// answer 200 is the test's.
func (h *hostileEnv) mustSend(t *testing.T, method, target string, body any) map[string]any {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	r, err := h.send(method, target, nil, b)
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("%s %s: %v %d %s", method, target, err, r.status, r.excerpt())
	}
	return r.json()
}

func (h *hostileEnv) scanSecrets(where string, b []byte) {
	for _, s := range append([]string{secretMarker, testSecret, hostileAdminToken}, h.secrets...) {
		if bytes.Contains(b, []byte(s)) {
			h.t.Errorf("SECRET LEAK: %s contains a secret (%.14s…)", where, s)
		}
	}
}

func (h *hostileEnv) fixtures() {
	t := h.t
	for _, id := range []string{"hc", "hc2"} {
		got := h.mustSend(t, "POST", "/v1/connections", map[string]any{"id": id, "displayName": id, "apiKey": hostileAPIKey, "baseUrl": h.origin})
		if s, _ := got["webhookSecret"].(string); s != "" {
			h.secrets = append(h.secrets, s)
		}
	}
	for _, id := range []string{"hs", "hs2"} {
		h.mustSend(t, "POST", "/v1/senders", map[string]any{"id": id, "connectionId": "hc", "fromAddress": "news@example.com"})
	}
	// Two rule versions (the built-in rules), so that their listing has a
	// second page to take a page token from.
	for range 2 {
		var set any
		if err := json.Unmarshal([]byte(defaultRuleSetJSON), &set); err != nil {
			t.Fatal(err)
		}
		h.mustSend(t, "PUT", "/v1/rules", map[string]any{"rules": set, "comment": "fixture"})
	}
	// A sender of another domain, so that the sending domains have a
	// second page to take a page token from.
	h.mustSend(t, "POST", "/v1/senders", map[string]any{"id": "hs3", "connectionId": "hc2", "fromAddress": "news@example.net"})
	for i := range 2 {
		got := h.mustSend(t, "POST", "/v1/sends", map[string]any{"senderId": "hs", "subject": "s", "text": "t", "idempotencyKey": fmt.Sprint("fixture-", i),
			"recipients": []any{map[string]any{"email": fmt.Sprint("fa", i, "@example.com")}, map[string]any{"email": fmt.Sprint("fb", i, "@example.com")}}})
		h.sendID, _ = got["send"].(map[string]any)["id"].(string)
	}
	b := body(report("fx-1", "fx@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"),
		strings.Replace(report("fx-2", "fx@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"), "10:00:00", "11:00:00", 1),
		report("fy-1", "fy@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"))
	if r, err := h.send("POST", server.WebhookPath, nil, []byte(b)); err != nil || r.status != 200 {
		t.Fatalf("fixture reports: %v %d %s", err, r.status, r.excerpt())
	}
	for range 2 {
		if r, _ := h.send("POST", server.WebhookPath, nil, []byte(`{"results":`)); r.status != 400 {
			t.Fatalf("fixture rejected payload: %d %s", r.status, r.excerpt())
		}
	}
	// Tracking reports classified as events, in Infobip's own form (an
	// array of objects), so that their listing has a second page; and
	// platform events, one object each, for domains of their own.
	tracking := `[{"notificationType":"CLICKED","eventId":"fx-t1","recipient":"fx@example.com","messageId":"tfx-1","url":"https://example.com/a"},
{"notificationType":"OPENED","eventId":"fx-t2","recipient":"fx@example.com","messageId":"tfx-2"},
{"notificationType":"CLICKED","eventId":"fy-t1","recipient":"fy@example.com","messageId":"tfy-1","url":"https://example.com/b"}]`
	if r, err := h.send("POST", server.TrackingWebhookPath, nil, []byte(tracking)); err != nil || r.status != 200 || r.json()["accepted"] != 3.0 {
		t.Fatalf("fixture tracking reports: %v %d %s", err, r.status, r.excerpt())
	}
	for _, d := range []string{"fx1.example.com", "fx2.example.com"} {
		ev := `{"eventId":"fx-` + d + `","createdAt":"1767308400000","eventDetails":{"type":"HIGH_BOUNCE_RATE_WARNING","domain":"` + d +
			`","warnThreshold":3,"bounceRate":3.2,"scope":"HOURLY"}}`
		if r, err := h.send("POST", server.PlatformEventsWebhookPath, nil, []byte(ev)); err != nil || r.status != 200 || r.json()["accepted"] != 1.0 {
			t.Fatalf("fixture platform event: %v %d %s", err, r.status, r.excerpt())
		}
	}
	for _, wh := range hostileWebhooks {
		h.newStored(t, wh)
	}
	h.lastRej, _ = h.newest(t, "/v1/rejectedPayloads", "payloads")
	// Wait for the sequencer to give the events positions, so that
	// WatchEvents from 0 has something to send.
	deadline := time.Now().Add(30 * time.Second)
	for {
		last, err := h.store.LastEventPosition(context.Background())
		if err == nil && last >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sequencer positioned no events: %d %v", last, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newest returns the highest id of a list's first page.
func (h *hostileEnv) newest(t *testing.T, path, key string) (int64, []map[string]any) {
	t.Helper()
	resp, err := h.send("GET", path+"?pageSize=20", nil, nil)
	if err != nil || resp.status != http.StatusOK {
		h.brokenRead(t, "(bookkeeping)", fmt.Sprintf("GET %s?pageSize=20: %v %d %s", path, err, resp.status, resp.excerpt()))
		return 0, nil
	}
	got := resp.json()
	var maxID int64
	var rows []map[string]any
	items, _ := got[key].([]any)
	for _, it := range items {
		m, _ := it.(map[string]any)
		id, _ := strconv.ParseInt(fmt.Sprint(m["id"]), 10, 64)
		maxID = max(maxID, id)
		rows = append(rows, m)
	}
	return maxID, rows
}

// ---------------------------------------------------------------------------
// The OpenAPI description, as the server serves it.

type openAPI struct {
	Paths       map[string]map[string]*openAPIOp `json:"paths"`
	Definitions map[string]*schema               `json:"definitions"`
}

type openAPIOp struct {
	OperationID string         `json:"operationId"`
	Parameters  []openAPIParam `json:"parameters"`
	method      string
	path        string
}

type openAPIParam struct {
	Name   string   `json:"name"`
	In     string   `json:"in"`
	Type   string   `json:"type"`
	Format string   `json:"format"`
	Enum   []string `json:"enum"`
	Items  *schema  `json:"items"`
	Schema *schema  `json:"schema"`
}

type schema struct {
	Ref                  string             `json:"$ref"`
	Type                 string             `json:"type"`
	Format               string             `json:"format"`
	Enum                 []string           `json:"enum"`
	Properties           map[string]*schema `json:"properties"`
	Items                *schema            `json:"items"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
}

// isMap reports whether the schema is a map (additionalProperties is a
// schema, not false).
func (s *schema) isMap() bool {
	return len(s.AdditionalProperties) > 0 && s.AdditionalProperties[0] == '{'
}

func (h *hostileEnv) loadOpenAPI() *openAPI {
	resp, err := http.Get(h.rest.URL + "/openapi.json")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var api openAPI
	if err := json.NewDecoder(resp.Body).Decode(&api); err != nil {
		h.t.Fatalf("/openapi.json: %v", err)
	}
	return &api
}

// ops returns every operation, sorted.
func (a *openAPI) ops() []*openAPIOp {
	var out []*openAPIOp
	for p, methods := range a.Paths {
		for m, op := range methods {
			op.method, op.path = strings.ToUpper(m), p
			out = append(out, op)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path+out[i].method < out[j].path+out[j].method })
	return out
}

// grpcMethod maps an operationId (Service_Method) to its gRPC method.
func (op *openAPIOp) grpcMethod() string {
	svc, m, _ := strings.Cut(op.OperationID, "_")
	return "/ibmail.v1." + svc + "/" + m
}

func (op *openAPIOp) route() string { return op.method + " " + op.path }

func (a *openAPI) resolve(s *schema) *schema {
	for s != nil && s.Ref != "" {
		s = a.Definitions[strings.TrimPrefix(s.Ref, "#/definitions/")]
	}
	return s
}

// ---------------------------------------------------------------------------
// Cases.

// site is one place a hostile value can go in a JSON body.
type site struct {
	path []any // keys (string) and indexes (int)
	name string
	leaf string
	kind string // string, int32, int64, double, enum, bool, timestamp, map, embedded
	// embedded: the field of the JSON document the string holds.
	embedded string
}

// sites walks a body schema.
func (a *openAPI) sites(s *schema, path []any, name string, depth int) []site {
	s = a.resolve(s)
	if s == nil || depth > 5 {
		return nil
	}
	var out []site
	names := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p := a.resolve(s.Properties[k])
		fp := append(slices.Clone(path), k)
		fn := strings.TrimPrefix(name+"."+k, ".")
		out = append(out, a.fieldSites(p, fp, fn, k, depth)...)
	}
	return out
}

func (a *openAPI) fieldSites(p *schema, fp []any, fn, leaf string, depth int) []site {
	switch {
	case p == nil:
		return nil
	case len(p.Enum) > 0:
		return []site{{path: fp, name: fn, leaf: leaf, kind: "enum"}}
	case p.Type == "string" && p.Format == "date-time":
		return []site{{path: fp, name: fn, leaf: leaf, kind: "timestamp"}}
	case p.Type == "string" && (p.Format == "int64" || p.Format == "uint64"):
		return []site{{path: fp, name: fn, leaf: leaf, kind: "int64"}}
	case p.Type == "string":
		out := []site{{path: fp, name: fn, leaf: leaf, kind: "string"}}
		for _, e := range embeddedFields[leaf] {
			out = append(out, site{path: fp, name: fn + "." + e, leaf: e, kind: "embedded", embedded: e})
		}
		return out
	case p.Type == "integer":
		return []site{{path: fp, name: fn, leaf: leaf, kind: "int32"}}
	case p.Type == "number":
		return []site{{path: fp, name: fn, leaf: leaf, kind: "double"}}
	case p.Type == "boolean":
		return []site{{path: fp, name: fn, leaf: leaf, kind: "bool"}}
	case p.Type == "array":
		el := append(slices.Clone(fp), 0)
		return a.fieldSites(a.resolve(p.Items), el, fn+"[0]", leaf, depth+1)
	case p.isMap():
		return []site{{path: fp, name: fn, leaf: leaf, kind: "map"}}
	case p.Type == "object" || p.Properties != nil:
		return a.sites(p, fp, fn, depth+1)
	}
	return []site{{path: fp, name: fn, leaf: leaf, kind: "unknown:" + p.Type + "/" + p.Format}}
}

// restCase is one hostile REST request.
type restCase struct {
	op      *openAPIOp
	class   string
	field   string
	leaf    string // the field an error about it must name; "" for whole-request classes
	summary string
	target  string
	header  http.Header
	body    []byte
	method  string
	// strict: the value must be refused (400/413; in a webhook, item 0
	// refused): "id", "header" or "time"; "unauthenticated" and
	// "too-large-header": the request must be refused; "accepted": it
	// must be answered 200.
	strict string
	// report0: the case changes only item 0 of a webhook body, so the body
	// must be answered 200 with item 1 stored (defect 12).
	report0 bool
	// reports is how many items the body holds, for the webhook's count.
	reports int
	// control is the tag of the case (see uTag) when its body holds its
	// webhook's control item untouched: answered 200, it must be stored.
	control string
	// duplicates, when set, is how many of the body's items repeat another
	// (by eventId): answered 200, exactly so many must count as duplicates.
	duplicates int
	// outer, when set, is the field whose value embeds leaf's document: a
	// refusal of item 0 may name it instead of leaf.
	outer   string
	storage bool
	// lenientEdge: refusals by net/http itself (431, a plain 400 for a
	// request line it cannot parse) and redirects of path cleaning are
	// allowed.
	lenientEdge bool
}

func (c restCase) String() string {
	f := c.field
	if f == "" {
		f = "-"
	}
	return fmt.Sprintf("%s [%s] field %s input %s", c.op.route(), c.class, f, c.summary)
}

// baselineMap returns the method's baseline with substitutions.
func (h *hostileEnv) baselineMap(method string, u int) (map[string]any, error) {
	b, ok := hostileBaselines[method]
	if !ok {
		return nil, fmt.Errorf("no baseline")
	}
	dec := json.NewDecoder(strings.NewReader(h.substitute(b.request, u)))
	dec.UseNumber()
	var m map[string]any
	return m, dec.Decode(&m)
}

func (h *hostileEnv) substitute(s string, u int) string {
	return strings.NewReplacer("{{u}}", uTag(u), "{{send}}", h.sendID, "{{origin}}", h.origin).Replace(s)
}

// request derives the REST request of op from a baseline map.
type restRequest struct {
	path   map[string]string
	query  url.Values
	body   any // nil: no body
	bodyOf *schema
}

func (h *hostileEnv) derive(op *openAPIOp, base map[string]any) restRequest {
	r := restRequest{path: map[string]string{}, query: url.Values{}}
	for _, p := range op.Parameters {
		v, present := base[p.Name]
		switch p.In {
		case "path":
			r.path[p.Name] = fmt.Sprint(v)
		case "query":
			if !present {
				continue
			}
			if list, ok := v.([]any); ok {
				for _, e := range list {
					r.query.Add(p.Name, fmt.Sprint(e))
				}
			} else {
				r.query.Set(p.Name, fmt.Sprint(v))
			}
		case "body":
			r.bodyOf = h.api.resolve(p.Schema)
			if p.Name != "body" {
				r.body = base[p.Name]
				if r.body == nil {
					r.body = map[string]any{}
				}
				continue
			}
			b := map[string]any{}
			for k := range r.bodyOf.Properties {
				if v, ok := base[k]; ok {
					b[k] = v
				}
			}
			r.body = b
		}
	}
	return r
}

func (r restRequest) target(op *openAPIOp, rawPath map[string]string, rawQuery string) string {
	p := op.path
	for k, v := range r.path {
		if raw, ok := rawPath[k]; ok {
			v = raw
		} else {
			v = url.PathEscape(v)
		}
		p = strings.Replace(p, "{"+k+"}", v, 1)
	}
	q := rawQuery
	if q == "" {
		q = r.query.Encode()
	}
	if q != "" {
		p += "?" + q
	}
	return p
}

// encodeBody encodes a body, writing raw JSON values where marked.
func encodeBody(v any, raws []string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v) //nolint:errcheck // maps of JSON values always encode
	b := bytes.TrimSpace(buf.Bytes())
	for i, raw := range raws {
		b = bytes.Replace(b, []byte(fmt.Sprintf(`"@@RAW%d@@"`, i)), []byte(raw), 1)
	}
	return b
}

// setAt puts v at path in root (creating what is missing) and returns root.
func setAt(root any, path []any, v any) any {
	if len(path) == 0 {
		return v
	}
	switch k := path[0].(type) {
	case string:
		m, _ := root.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		m[k] = setAt(m[k], path[1:], v)
		return m
	case int:
		list, _ := root.([]any)
		for len(list) <= k {
			list = append(list, map[string]any{})
		}
		list[k] = setAt(list[k], path[1:], v)
		return list
	}
	return root
}

// deepCopy copies a decoded JSON value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// jsonStringRaw quotes s as a JSON string, leaving bytes that are not
// valid UTF-8 as they are (encoding/json would replace them).
func jsonStringRaw(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// restCases generates every case of op.
func (h *hostileEnv) restCases(t *testing.T, op *openAPIOp, u *int) []restCase {
	t.Helper()
	method := op.grpcMethod()
	base, err := h.baselineMap(method, 0)
	if err != nil {
		t.Errorf("%s (%s): %v: add one to hostileBaselines", op.route(), method, err)
		return nil
	}
	_ = base
	next := func() (map[string]any, restRequest) {
		*u++
		b, _ := h.baselineMap(method, *u)
		return b, h.derive(op, b)
	}
	wh := webhookAt(op.path)
	isWebhook := wh != nil
	storageRoute := !classifyRoute(op.path)
	var cases []restCase
	add := func(c restCase) {
		c.op = op
		if c.method == "" {
			c.method = op.method
		}
		if isWebhook && c.reports == 0 && c.body != nil {
			c.reports = -1 // unknown: only the accounting of 200 answers is checked
		}
		// The case's body is that of the last baseline taken (next).
		if tag := uTag(*u); isWebhook && bytes.Contains(c.body, []byte(wh.controlKey(tag))) {
			c.control = tag
		}
		c.storage = c.storage && storageRoute
		if !storageRoute && (c.strict == "id" || c.strict == "time") {
			c.strict = "" // classification stores nothing: no id or event time enters
		}
		cases = append(cases, c)
	}
	// The baseline itself.
	{
		_, r := next()
		add(restCase{class: "baseline", target: r.target(op, nil, ""), body: bodyBytes(r), reports: 2 * boolInt(isWebhook), storage: true})
	}
	// Path parameters.
	for _, p := range op.Parameters {
		if p.In != "path" {
			continue
		}
		for _, pc := range pathClasses {
			_, r := next()
			add(restCase{class: "path/" + pc.name, field: p.Name, leaf: p.Name, summary: summarize(pc.raw),
				target: r.target(op, map[string]string{p.Name: pc.raw}, ""), body: bodyBytes(r), storage: pc.storage, lenientEdge: true})
		}
	}
	// Query parameters.
	for _, p := range op.Parameters {
		if p.In != "query" {
			continue
		}
		var raws []struct {
			name, raw string
			storage   bool
		}
		switch {
		case len(p.Enum) > 0:
			for _, v := range queryEnumClasses {
				raws = append(raws, struct {
					name, raw string
					storage   bool
				}{"enum/" + v, v, strings.Contains(v, "%00")})
			}
		case p.Type == "boolean":
			for _, v := range queryBoolClasses {
				raws = append(raws, struct {
					name, raw string
					storage   bool
				}{"bool/" + v, v, false})
			}
		case p.Type == "integer":
			for _, v := range queryIntClasses {
				raws = append(raws, struct {
					name, raw string
					storage   bool
				}{"int/" + v, v, false})
			}
		case p.Type == "string" || p.Type == "array":
			for _, v := range queryStringClasses {
				raws = append(raws, struct {
					name, raw string
					storage   bool
				}{"string/" + v.name, v.raw, v.storage})
			}
			if p.Name == "pageToken" {
				for name, tok := range h.tamperedTokens(t, op) {
					raws = append(raws, struct {
						name, raw string
						storage   bool
					}{"page-token/" + name, url.QueryEscape(tok), true})
				}
			}
		default:
			t.Errorf("%s: query parameter %s of type %s has no hostile values: add a class", op.route(), p.Name, p.Type)
		}
		for _, q := range raws {
			_, r := next()
			r.query.Del(p.Name)
			rawQuery := r.query.Encode()
			if rawQuery != "" {
				rawQuery += "&"
			}
			rawQuery += p.Name + "=" + q.raw
			add(restCase{class: "query/" + q.name, field: p.Name, leaf: p.Name, summary: summarize(q.raw),
				target: r.target(op, nil, rawQuery), body: bodyBytes(r), storage: q.storage, lenientEdge: true})
		}
		if p.Type == "array" {
			_, r := next()
			rawQuery := r.query.Encode() + strings.Repeat("&"+p.Name+"=newsletter.hardbounce", 1000)
			add(restCase{class: "query/many-values", field: p.Name, leaf: p.Name, summary: "1000 values", target: r.target(op, nil, rawQuery), body: bodyBytes(r)})
		}
	}
	// Body fields, from the body's schema.
	_, r0 := next()
	if r0.bodyOf != nil {
		once := false
		for _, s := range h.api.sites(r0.bodyOf, nil, "", 0) {
			report0 := isWebhook && len(s.path) > 1 && s.path[0] == wh.items && s.path[1] == 0
			for _, hv := range h.siteValues(t, op, s) {
				if hv.once {
					if once {
						continue
					}
					once = true
				}
				_, r := next()
				body := deepCopy(r.body)
				var raws []string
				v := any(hv.v.str)
				if hv.v.isRaw {
					v = fmt.Sprintf("@@RAW%d@@", len(raws))
					raws = append(raws, hv.v.raw)
				}
				if s.kind == "map" {
					body = setAt(body, s.path, map[string]any{hv.mapKey: v})
				} else {
					body = setAt(body, s.path, v)
				}
				c := restCase{class: hv.class, field: s.name, leaf: s.leaf, summary: hv.summary, target: r.target(op, nil, ""),
					body: encodeBody(body, raws), strict: hv.strict, report0: report0, storage: hv.storage}
				if isWebhook {
					c.reports = 2
				}
				if s.kind == "embedded" && hv.class == "string/"+invalidUTF8Class {
					// Bytes that are not UTF-8 spoil the JSON string that
					// embeds the document: no decoder gets inside it.
					c.outer, _ = s.path[len(s.path)-1].(string)
				}
				add(c)
			}
		}
		// Whole-body classes.
		_, r := next()
		good := bodyBytes(r)
		for _, wb := range []struct{ name, body string }{
			{"malformed", `{"a":`}, {"trailing-garbage", string(good) + " x"}, {"top-level-array", `[1]`},
			{"top-level-string", `"x"`}, {"empty", ``}, {"deep-nesting", strings.Repeat("[", 100000)},
			{"deep-nesting-in-field", `{"zz":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000) + `}`},
			{"bom", "\ufeff" + string(good)}, {"invalid-utf8-outside-strings", "\xff" + string(good)},
			{"unknown-fields", strings.Replace(string(good), "{", `{"zzUnknown":[1,{"b":null}],`, 1)},
			{"duplicate-keys", strings.Replace(string(good), "{", `{"zzDup":1,"zzDup":2,`, 1)},
		} {
			_, r := next()
			_ = r
			add(restCase{class: "body/" + wb.name, summary: summarize(wb.body), target: r.target(op, nil, ""), body: []byte(wb.body), storage: true})
		}
		for _, ct := range []string{"text/plain", "application/json; charset=latin1", "application/x-www-form-urlencoded", "garbage/;;"} {
			_, r := next()
			add(restCase{class: "content-type/" + ct, summary: ct, target: r.target(op, nil, ""), body: bodyBytes(r), header: http.Header{"Content-Type": {ct}}})
		}
		if isWebhook && wh.native {
			nativeCases(op, wh, next, add)
		}
	}
	// Headers.
	valid := validAuth(op.path)
	for _, hc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"two-authorization-valid-first", http.Header{"Authorization": {valid, "Bearer wrong-token-0123456789"}}, 401},
		{"two-authorization-valid-last", http.Header{"Authorization": {"Bearer wrong-token-0123456789", valid}}, 401},
		{"huge-authorization", http.Header{"Authorization": {"Bearer " + strings.Repeat("x", 64<<10)}}, 401},
		{"huge-header-64KiB", http.Header{"X-Hostile": {strings.Repeat("x", 64<<10)}}, 0},
		{"huge-header-2MiB", http.Header{"X-Hostile": {strings.Repeat("x", 2<<20)}}, 431},
		{"method-override", http.Header{"X-Http-Method-Override": {"DELETE"}, "X-Method-Override": {"DELETE"}}, 0},
	} {
		_, r := next()
		add(restCase{class: "header/" + hc.name, summary: hc.name, target: r.target(op, nil, ""), body: bodyBytes(r), header: hc.header,
			strict: map[int]string{401: "unauthenticated", 431: "too-large-header"}[hc.want], lenientEdge: true})
	}
	// A webhook's credential: exactly one, the Basic password or the
	// query parameter token (for notifyUrls that can carry nothing else).
	if isWebhook {
		none := http.Header{"Authorization": nil}
		for _, cc := range []struct {
			name, query string
			header      http.Header
			strict      string
		}{
			{"token", "token=" + url.QueryEscape(testSecret), none, "accepted"},
			{"token-and-basic", "token=" + url.QueryEscape(testSecret), nil, "unauthenticated"},
			{"two-tokens-valid-first", "token=" + url.QueryEscape(testSecret) + "&token=wrong-token-0123456789", none, "unauthenticated"},
			{"two-tokens-valid-last", "token=wrong-token-0123456789&token=" + url.QueryEscape(testSecret), none, "unauthenticated"},
			{"token-empty", "token=", none, "unauthenticated"},
			{"basic-without-password", "", http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("infobip"))}}, "unauthenticated"},
			{"bearer-admin-token", "", http.Header{"Authorization": {"Bearer " + hostileAdminToken}}, "unauthenticated"},
		} {
			_, r := next()
			add(restCase{class: "credential/" + cc.name, summary: cc.name, target: r.target(op, nil, cc.query), body: bodyBytes(r),
				header: cc.header, strict: cc.strict, reports: 2})
		}
	}
	return cases
}

// nativeCases are the bodies of a webhook that takes Infobip's own form,
// one item object or an array of them, beside the API form the OpenAPI
// description gives: the baseline's items in that form, and arrays whose
// item 0 is no report at all beside the control item, which must be
// refused and kept alone (defect 12).
func nativeCases(op *openAPIOp, wh *hostileWebhook, next func() (map[string]any, restRequest), add func(restCase)) {
	items := func() (string, string, restRequest) {
		_, r := next()
		list, _ := r.body.(map[string]any)[wh.items].([]any)
		return string(encodeBody(list[0], nil)), string(encodeBody(list[1], nil)), r
	}
	{
		item0, control, r := items()
		add(restCase{class: "native/array", summary: "[item0, control]", target: r.target(op, nil, ""), body: []byte("[" + item0 + "," + control + "]"),
			reports: 2, storage: true, strict: "accepted"})
	}
	{
		item0, _, r := items()
		add(restCase{class: "native/object", summary: "item0", target: r.target(op, nil, ""), body: []byte(item0), reports: 1, storage: true, strict: "accepted"})
	}
	{
		_, control, r := items()
		add(restCase{class: "native/duplicate-in-body", summary: "[control, control]", target: r.target(op, nil, ""),
			body: []byte("[" + control + "," + control + "]"), reports: 2, duplicates: 1, storage: true, strict: "accepted"})
	}
	{
		_, _, r := items()
		add(restCase{class: "native/empty-array", summary: "[]", target: r.target(op, nil, ""), body: []byte("[]"), storage: true})
	}
	for _, bad := range []struct{ name, item string }{
		{"null", `null`}, {"string", `"x"`}, {"number", `5`}, {"bool", `true`}, {"array", `[]`}, {"nested-array", `[{"eventId":"nested"}]`},
		{"empty-object", `{}`}, {"api-form", `{"` + wh.items + `":[{"eventId":"inner"}]}`},
		{"wrong-types", `{"eventId":5,"createdAt":{"a":1},"eventDetails":"x","notificationType":["x"],"recipient":false}`},
		{"invalid-utf8", "{\"eventId\":\"x\xff\xfey\"}"}, {"long-string", `{"eventId":"` + strings.Repeat("e", 64<<10) + `"}`},
	} {
		_, control, r := items()
		add(restCase{class: "native/item0-" + bad.name, field: "[0]", summary: summarize(bad.item), target: r.target(op, nil, ""),
			body: []byte("[" + bad.item + "," + control + "]"), reports: 2, report0: true, storage: true})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func bodyBytes(r restRequest) []byte {
	if r.body == nil {
		return nil
	}
	return encodeBody(r.body, nil)
}

// hostileValue is one value for a site.
type hostileValue struct {
	class, summary, strict, mapKey string
	v                              value
	storage, once                  bool
}

func (h *hostileEnv) siteValues(t *testing.T, op *openAPIOp, s site) []hostileValue {
	var out []hostileValue
	nums := func(kind string, cs []numberClass) {
		for _, c := range cs {
			out = append(out, hostileValue{class: kind + "/" + c.name, summary: c.json, v: rawJSON(c.json)})
		}
	}
	switch {
	case s.kind == "string" || s.kind == "embedded" || s.kind == "map":
		for _, sc := range stringClasses {
			v := sc.v(secretFields[s.leaf])
			hv := hostileValue{class: "string/" + sc.name, storage: sc.storage, once: sc.oncePerRoute, v: v, summary: summarize(v.str + v.raw)}
			switch {
			case idFields[s.leaf] && sc.refusedInIDs:
				hv.strict = "id"
			case headerFields[s.leaf] && sc.refusedInHeaders:
				hv.strict = "header"
			}
			if s.kind == "embedded" {
				inner := jsonStringRaw(v.str)
				if v.isRaw {
					inner = v.raw
				}
				hv.v = rawJSON(jsonStringRaw(`{"` + s.embedded + `":` + inner + `}`))
			}
			if s.kind == "map" {
				if sc.restOnly || v.isRaw || sc.oncePerRoute {
					continue
				}
				key := hv
				key.class, key.mapKey, key.v = "map-key/"+sc.name, v.str, str("v")
				hv.class, hv.mapKey = "map-value/"+sc.name, "name"
				out = append(out, key)
			}
			out = append(out, hv)
		}
		if strings.HasSuffix(s.leaf, "At") && s.kind == "string" {
			for _, tc := range infobipTimeClasses {
				hv := hostileValue{class: "time/" + tc.name, v: str(tc.v(time.Now())), storage: true}
				hv.summary = hv.v.str
				if tc.strict && eventTimeFields[s.leaf] {
					hv.strict = "time"
				}
				out = append(out, hv)
			}
		}
	case s.kind == "int32":
		nums("int32", int32Classes)
	case s.kind == "int64":
		nums("int64", int64Classes)
		if epochMillisFields[s.leaf] {
			for _, tc := range epochMillisClasses {
				hv := hostileValue{class: "epoch-ms/" + tc.name, v: str(tc.v(time.Now())), storage: true}
				hv.summary = hv.v.str
				if tc.strict {
					hv.strict = "time"
				}
				out = append(out, hv)
			}
		}
	case s.kind == "double":
		nums("double", doubleClasses)
	case s.kind == "enum":
		nums("enum", enumClasses)
	case s.kind == "bool":
		nums("bool", boolClasses)
	case s.kind == "timestamp":
		for _, c := range timestampClasses {
			out = append(out, hostileValue{class: "timestamp/" + c.name, summary: c.json, v: rawJSON(c.json), storage: true})
		}
	default:
		t.Errorf("%s: field %s of kind %s has no hostile values: add a class to hostile_cases_test.go", op.route(), s.name, s.kind)
	}
	if s.leaf == "pageToken" {
		for name, tok := range h.tamperedTokens(t, op) {
			out = append(out, hostileValue{class: "page-token/" + name, summary: summarize(tok), v: str(tok), storage: true})
		}
	}
	return out
}

// tamperedTokens returns real page tokens of op's baseline with their
// position changed: the server must refuse or honour them, never fail.
func (h *hostileEnv) tamperedTokens(t *testing.T, op *openAPIOp) map[string]string {
	base, _ := h.baselineMap(op.grpcMethod(), 0)
	base["pageSize"] = json.Number("1")
	r := h.derive(op, base)
	resp, err := h.send(op.method, r.target(op, nil, ""), nil, bodyBytes(r))
	if err != nil || resp.status != 200 {
		t.Errorf("%s: the baseline with pageSize 1 failed: %v %d %s", op.route(), err, resp.status, resp.excerpt())
		return nil
	}
	tok, _ := resp.json()["nextPageToken"].(string)
	if tok == "" {
		t.Errorf("%s: no second page to take a page token from: add fixtures", op.route())
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	var fields map[string]any
	if err != nil || json.Unmarshal(raw, &fields) != nil {
		return map[string]string{"truncated": tok[:len(tok)/2]}
	}
	out := map[string]string{"truncated": tok[:len(tok)/2], "appended": tok + "AAAA"}
	for name, change := range map[string]func(map[string]any){
		"id-negative": func(m map[string]any) { m["i"] = -1 },
		"id-max":      func(m map[string]any) { m["i"] = json.Number("9223372036854775807") },
		"id-overflow": func(m map[string]any) { m["i"] = json.Number("99999999999999999999") },
		"time-max":    func(m map[string]any) { m["t"] = json.Number("9223372036854775807") },
		"time-min":    func(m map[string]any) { m["t"] = json.Number("-9223372036854775808") },
		"key-nul":     func(m map[string]any) { m["k"] = "a\x00b" },
		"key-long":    func(m map[string]any) { m["k"] = strings.Repeat("k", 64<<10) },
		"key-type":    func(m map[string]any) { m["k"] = 5 },
	} {
		m := deepCopy(fields).(map[string]any)
		change(m)
		b, _ := json.Marshal(m)
		out[name] = base64.RawURLEncoding.EncodeToString(b)
	}
	return out
}

// ---------------------------------------------------------------------------
// Checks.

// rpcStatus is a google.rpc.Status as the gateway writes it.
type rpcStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type            string `json:"@type"`
		Reason          string `json:"reason"`
		Domain          string `json:"domain"`
		FieldViolations []struct {
			Field       string `json:"field"`
			Description string `json:"description"`
		} `json:"fieldViolations"`
	} `json:"details"`
}

func norm(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, s)
}

// names reports whether text names the field leaf (in either spelling).
func names(text, leaf string) bool { return strings.Contains(norm(text), norm(leaf)) }

// run sends one case and checks every invariant; it returns false when the
// case failed, after reporting why.
func (h *hostileEnv) runREST(t *testing.T, c restCase) {
	t.Helper()
	fail := func(format string, args ...any) {
		h.failures++
		t.Errorf("%s: %s", c, fmt.Sprintf(format, args...))
	}
	wh := webhookAt(c.op.path)
	isWebhook := wh != nil
	resp, err := h.send(c.method, c.target, c.header, c.body)
	if err != nil {
		if c.strict == "too-large-header" {
			return // the server closed the connection on the header
		}
		fail("no answer: %v", err)
		return
	}
	got := fmt.Sprintf("got %d %s", resp.status, resp.excerpt())
	st, reason, violations := h.parseStatus(resp)
	switch {
	case resp.status >= 500:
		fail("a 5xx: %s", got)
		if isWebhook || c.method != "GET" {
			h.readBack(t, c.String(), nil) // what the failed call left behind must not break reads
		}
		return
	case resp.status >= 300 && resp.status < 400:
		if !c.lenientEdge || resp.header.Get("Location") == "" {
			fail("a redirect: %s", got)
		}
		return
	case c.lenientEdge && (resp.status == 431 || (resp.status == 400 && strings.HasPrefix(string(resp.body), "400 Bad Request"))):
		return // net/http refused the request line or headers itself
	case resp.status >= 400:
		if st == nil {
			fail("the error body is not a google.rpc.Status: %s", got)
			return
		}
		if reason == "" {
			fail("the error carries no ErrorInfo of domain ibmail.v1 with a reason: %s", got)
		}
	}
	switch c.strict {
	case "unauthenticated":
		if resp.status != 401 && resp.status != 400 {
			fail("ambiguous or garbage credentials were not refused: %s", got)
		}
		return
	case "too-large-header":
		if resp.status != 431 && resp.status != 400 {
			fail("a 2 MiB header was not refused: %s", got)
		}
		return
	case "accepted":
		if resp.status != 200 {
			fail("a valid request was not accepted: %s", got)
		}
	}
	if resp.status == 400 && c.leaf != "" && st != nil {
		text := st.Message + " " + violations
		switch {
		case reason == string(server.ReasonInvalidArgument) && violations == "":
			fail("a field error without a BadRequest: %s", got)
		case reason == string(server.ReasonInvalidArgument) && !names(violations, c.leaf):
			fail("the BadRequest does not name %s: %s", c.leaf, got)
		case reason == string(server.ReasonMalformedBody) && !isWebhook && !names(text, c.leaf):
			fail("the refusal does not name the field %s: %s", c.leaf, got)
		}
	}
	if c.strict != "" && !isWebhook && resp.status != 400 && resp.status != 413 {
		fail("a %s value was not refused: %s", c.strict, got)
	}
	if isWebhook {
		h.checkWebhook(t, c, resp, fail)
		answered := resp.status == 200 && c.method == "POST"
		accepted, _ := resp.json()["accepted"].(float64)
		if profiles, others := h.afterWebhook(t, wh, c.control, answered, int(accepted), fail); others {
			h.readBackWebhook(t, c.String(), profiles)
		}
		return
	}
	if resp.status < 300 && c.method != "GET" && !classifyRoute(c.op.path) {
		h.readBack(t, c.String(), h.touched(t, c, resp))
	}
}

// classifyRoute reports the routes that classify without storing.
func classifyRoute(path string) bool {
	return strings.HasPrefix(path, "/v1/reports:") || strings.HasPrefix(path, "/v1/trackingReports:")
}

func (h *hostileEnv) parseStatus(resp restResp) (*rpcStatus, string, string) {
	var st rpcStatus
	if json.Unmarshal(resp.body, &st) != nil || st.Code == 0 {
		return nil, "", ""
	}
	var reason, violations string
	for _, d := range st.Details {
		if strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") && d.Domain == "ibmail.v1" && d.Reason != "" {
			reason = d.Reason
		}
		for _, v := range d.FieldViolations {
			violations += v.Field + ": " + v.Description + "; "
		}
	}
	return &st, reason, violations
}

// checkWebhook: no item is lost and no bad item refuses the others.
func (h *hostileEnv) checkWebhook(t *testing.T, c restCase, resp restResp, fail func(string, ...any)) {
	t.Helper()
	got := fmt.Sprintf("got %d %s", resp.status, resp.excerpt())
	newRej := h.newRejected(t)
	switch resp.status {
	case 200:
		m := resp.json()
		num := func(k string) int { f, _ := m[k].(float64); return int(f) }
		rejected, _ := m["rejected"].([]any)
		if c.duplicates > 0 && num("duplicates") != c.duplicates {
			fail("of %d items, %d repeat another, but %d counted as duplicates: %s", c.reports, c.duplicates, num("duplicates"), got)
		}
		if c.reports > 0 && num("accepted")+num("duplicates")+len(rejected) != c.reports {
			fail("of %d reports, %d accepted, %d duplicates, %d rejected: reports unaccounted for: %s", c.reports, num("accepted"), num("duplicates"), len(rejected), got)
		}
		if len(newRej) < len(rejected) {
			fail("%d reports rejected but %d kept as rejected payloads", len(rejected), len(newRej))
		}
		named := false
		for _, r := range rejected {
			rj, _ := r.(map[string]any)
			if idx, _ := rj["index"].(float64); idx != 0 {
				continue
			}
			named = true
			// Only the case's field differs from a valid item: the
			// refusal must name it, as a field error does.
			text := fmt.Sprint(rj["field"], " ", rj["reason"])
			if c.report0 && c.leaf != "" && !names(text, c.leaf) && (c.outer == "" || !names(text, c.outer)) {
				fail("item 0 was refused without naming %s (field %q): %s", c.leaf, rj["field"], got)
			}
		}
		if c.strict != "" && c.report0 && !named {
			fail("item 0 with a %s value was stored, not refused and named in rejected: %s", c.strict, got)
		}
	case 400:
		kept := false
		for _, p := range newRej {
			if b, _ := base64.StdEncoding.DecodeString(fmt.Sprint(p["body"])); bytes.Equal(b, c.body) {
				kept = true
			}
		}
		if !kept {
			fail("the refused body was not kept as it arrived (%d new rejected payloads): %s", len(newRej), got)
		}
		if c.report0 {
			fail("one report's field refused the whole body; its other report was not stored: %s", got)
		}
	}
}

// newRejected returns the rejected payloads kept since the last call.
func (h *hostileEnv) newRejected(t *testing.T) []map[string]any {
	id, rows := h.newest(t, "/v1/rejectedPayloads", "payloads")
	var out []map[string]any
	for _, r := range rows {
		if n, _ := strconv.ParseInt(fmt.Sprint(r["id"]), 10, 64); n > h.lastRej {
			if r["bodyTruncated"] == true {
				// A listing shortens large bodies: the whole one is a Get away.
				resp, err := h.send("GET", "/v1/rejectedPayloads/"+fmt.Sprint(r["id"]), nil, nil)
				if err != nil || resp.status != http.StatusOK {
					h.brokenRead(t, "(bookkeeping)", fmt.Sprintf("GET /v1/rejectedPayloads/%v: %v %d %s", r["id"], err, resp.status, resp.excerpt()))
				} else if whole, ok := resp.json()["payload"].(map[string]any); ok {
					r = whole
				}
			}
			out = append(out, r)
		}
	}
	h.lastRej = max(h.lastRej, id)
	return out
}

// touchedProfile is a profile a case may have stored something for.
type touchedProfile struct {
	id        string
	messageID string // when set, the profile's activity must show its event
}

func (h *hostileEnv) touched(t *testing.T, c restCase, resp restResp) []touchedProfile {
	var out []touchedProfile
	switch {
	case c.op.path == "/v1/sends" && resp.status == 200:
		send, _ := resp.json()["send"].(map[string]any)
		got := h.mustSend(t, "GET", "/v1/sends/"+url.PathEscape(fmt.Sprint(send["id"]))+"/recipients?pageSize=1000", nil)
		recs, _ := got["recipients"].([]any)
		for _, r := range recs {
			out = append(out, touchedProfile{id: fmt.Sprint(r.(map[string]any)["profileId"])})
		}
	case c.op.path == "/v1/connections" && resp.status == 200:
		if s, _ := resp.json()["webhookSecret"].(string); s != "" {
			h.secrets = append(h.secrets, s)
		}
	}
	return out
}

// readBack checks that every read still works after a case: the activity
// of the profiles it touched (REST and gRPC), the segmentation with and
// without a window, and the newest page of every list.
func (h *hostileEnv) readBack(t *testing.T, after string, profiles []touchedProfile) {
	t.Helper()
	h.flushWebhookReads(t)
	h.readProfiles(t, after, profiles)
	h.readAll(t, after, bounceEventNames)
}

// bounceEventNames are the events the readBack's segmentation asks for:
// those of delivery reports, which tracking reports of late bounces and
// complaints make too.
var bounceEventNames = []any{"newsletter.hardbounce", "newsletter.softbounce", "newsletter.spambounce", "newsletter.dropped"}

// trackingEventNames are the other events of tracking reports, asked for
// in the final sweep.
var trackingEventNames = []any{"newsletter.open", "newsletter.click", "newsletter.unsubscribe"}

// webhookReadEvery is how many webhook cases share one readAll. A webhook
// case's own items are read at once (their profiles' activity, their
// listing, the rejected payloads: see readProfiles, newStored,
// newRejected); the reads of everything, whose cost grows with the store,
// come after every webhookReadEvery of them, and a read they find broken
// names the cases since the last. Run after every case, they made the
// three webhooks' cases cost the suite several minutes under -race.
const webhookReadEvery = 8

// readBackWebhook is readBack after a webhook case that stored more than
// its control item: the profiles at once, the rest sampled.
func (h *hostileEnv) readBackWebhook(t *testing.T, after string, profiles []touchedProfile) {
	t.Helper()
	h.readProfiles(t, after, profiles)
	if h.pendingReads == 0 {
		h.firstPending = after
	}
	h.pendingReads++
	h.lastPending = after
	if h.pendingReads >= webhookReadEvery {
		h.flushWebhookReads(t)
	}
}

// flushWebhookReads makes the reads readBackWebhook left for later.
func (h *hostileEnv) flushWebhookReads(t *testing.T) {
	t.Helper()
	if h.pendingReads == 0 {
		return
	}
	after := fmt.Sprintf("one of the %d webhook cases from %s to %s", h.pendingReads, h.firstPending, h.lastPending)
	if h.pendingReads == 1 {
		after = h.lastPending
	}
	h.pendingReads = 0
	h.readAll(t, after, bounceEventNames)
}

// readProfiles reads the activity of the profiles a case touched, over
// REST and gRPC: each must list, with the event of its stored report and
// only event times a real report can carry.
func (h *hostileEnv) readProfiles(t *testing.T, after string, profiles []touchedProfile) {
	t.Helper()
	fail := func(format string, args ...any) { h.brokenRead(t, after, fmt.Sprintf(format, args...)) }
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+hostileAdminToken)
	lo, hi := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(25*time.Hour)
	for _, p := range profiles {
		target := "/v1/profiles/" + url.PathEscape(p.id) + "/events?pageSize=1000"
		resp, err := h.send("GET", target, nil, nil)
		if err != nil || resp.status != 200 {
			fail("the activity list of stored profile %s over REST: %v %d %s", summarize(p.id), err, resp.status, resp.excerpt())
		} else {
			events, _ := resp.json()["events"].([]any)
			found := p.messageID == ""
			for _, e := range events {
				ev := e.(map[string]any)
				if params, _ := ev["params"].(map[string]any); params["messageId"] == p.messageID {
					found = true
				}
				if tm, err := time.Parse(time.RFC3339Nano, fmt.Sprint(ev["time"])); err != nil || tm.Before(lo) || tm.After(hi) {
					fail("profile %s shows an event at %v, outside what a real report carries (2000 to a day after arrival)", summarize(p.id), ev["time"])
				}
			}
			if !found {
				fail("the activity list of profile %s over REST lacks the event of its stored report %s", summarize(p.id), summarize(p.messageID))
			}
		}
		if _, err := h.people.ListProfileEvents(ctx, &ibmailv1.ListProfileEventsRequest{ProfileId: p.id, PageSize: 1000}); err != nil {
			fail("the activity list of stored profile %s over gRPC: %v", summarize(p.id), err)
		}
	}
}

// readAll reads the segmentation of names, with and without a window, to
// its last page, and the newest page of every list.
func (h *hostileEnv) readAll(t *testing.T, after string, names []any) {
	t.Helper()
	fail := func(format string, args ...any) { h.brokenRead(t, after, fmt.Sprintf(format, args...)) }
	for _, window := range []map[string]any{{}, {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"}} {
		tok := ""
		for page := 0; page < 100; page++ {
			req := map[string]any{"eventNames": names, "pageSize": 1000, "pageToken": tok}
			for k, v := range window {
				req[k] = v
			}
			b, _ := json.Marshal(req)
			resp, err := h.send("POST", "/v1/profiles:search", nil, b)
			if err != nil || resp.status != 200 {
				fail("profiles:search %v: %v %d %s", window, err, resp.status, resp.excerpt())
				break
			}
			if tok, _ = resp.json()["nextPageToken"].(string); tok == "" {
				break
			}
		}
	}
	for _, list := range []string{"/v1/deliveryReports", "/v1/trackingReports", "/v1/rejectedPayloads", "/v1/sends", "/v1/suppressions", "/v1/sendingDomains"} {
		if resp, err := h.send("GET", list+"?pageSize=5", nil, nil); err != nil || resp.status != 200 {
			fail("GET %s: %v %d %s", list, err, resp.status, resp.excerpt())
		}
	}
}

// brokenRead reports a read that failed; a read broken for good is
// reported once, with the first case after which it broke.
func (h *hostileEnv) brokenRead(t *testing.T, after, msg string) {
	t.Helper()
	h.failures++
	if h.brokenReads == nil {
		h.brokenReads = map[string]int{}
	}
	if h.brokenReads[msg]++; h.brokenReads[msg] == 1 {
		t.Errorf("READ BROKEN, first after %s: %s", after, msg)
	}
}

// fullSweep pages through everything stored, over REST and gRPC.
func (h *hostileEnv) fullSweep(t *testing.T) {
	t.Helper()
	profiles := map[string]bool{}
	for _, list := range []struct{ path, key string }{
		{"/v1/deliveryReports", "reports"}, {"/v1/rejectedPayloads", "payloads"}, {"/v1/sends", "sends"},
		{"/v1/suppressions", "suppressions"}, {"/v1/connections", "connections"}, {"/v1/senders", "senders"},
		{"/v1/trackingReports", "reports"}, {"/v1/sendingDomains", "sendingDomains"},
	} {
		tok := ""
		for page := 0; page < 1000; page++ {
			resp, err := h.send("GET", list.path+"?pageSize=200&pageToken="+url.QueryEscape(tok), nil, nil)
			if err != nil || resp.status != 200 {
				h.failures++
				t.Errorf("READ BROKEN in the final sweep: GET %s page %d: %v %d %s", list.path, page, err, resp.status, resp.excerpt())
				break
			}
			m := resp.json()
			items, _ := m[list.key].([]any)
			for _, it := range items {
				if p, ok := it.(map[string]any)["profileId"].(string); ok {
					profiles[p] = true
				}
			}
			if tok, _ = m["nextPageToken"].(string); tok == "" {
				break
			}
		}
	}
	var touched []touchedProfile
	for p := range profiles {
		touched = append(touched, touchedProfile{id: p})
	}
	sort.Slice(touched, func(i, j int) bool { return touched[i].id < touched[j].id })
	h.readBack(t, "all cases (final sweep)", touched)
	h.readAll(t, "all cases (final sweep)", trackingEventNames)
	if strings.Contains(h.logs.String(), secretMarker) || strings.Contains(h.logs.String(), testSecret) || strings.Contains(h.logs.String(), hostileAdminToken) {
		t.Errorf("SECRET LEAK: the server's log holds a secret")
	}
	for _, s := range h.secrets {
		if strings.Contains(h.logs.String(), s) {
			t.Errorf("SECRET LEAK: the server's log holds a connection's webhook secret")
		}
	}
}

// ---------------------------------------------------------------------------
// The tests.

// TestHostileCoverage fails when a route of the OpenAPI description or a
// method of a registered ibmail.v1 service has no baseline, or a baseline
// is not answered as expected: a new route gets the suite's treatment.
func TestHostileCoverage(t *testing.T) {
	h := newHostileEnv(t)
	seen := map[string]bool{}
	for _, op := range h.api.ops() {
		m := op.grpcMethod()
		seen[m] = true
		b, ok := hostileBaselines[m]
		if !ok {
			t.Errorf("%s (operationId %s): no baseline in hostileBaselines for %s", op.route(), op.OperationID, m)
			continue
		}
		if strings.HasPrefix(op.path, "/v1/webhooks/") && (webhookAt(op.path) == nil || webhookOf(m) == nil) {
			t.Errorf("%s (%s): a webhook missing from hostileWebhooks: its cases would not authenticate as Infobip does", op.route(), m)
		}
		base, err := h.baselineMap(m, 0)
		if err != nil {
			t.Errorf("%s: baseline: %v", m, err)
			continue
		}
		r := h.derive(op, base)
		resp, err := h.send(op.method, r.target(op, nil, ""), nil, bodyBytes(r))
		want := b.want
		if want == 0 {
			want = 200
		}
		if err != nil || resp.status != want {
			t.Errorf("%s: the baseline got %v %d %s, want %d: the cases derived from it test little", op.route(), err, resp.status, resp.excerpt(), want)
		}
	}
	for _, m := range h.grpcMethods(t) {
		if _, ok := hostileBaselines[m.full]; !ok {
			t.Errorf("gRPC method %s: no baseline in hostileBaselines", m.full)
		}
	}
	for m := range hostileBaselines {
		if _, err := h.requestOf(m); err != nil {
			t.Errorf("baseline of %s: %v", m, err)
		}
	}
}

// runRESTSuite runs every REST case; only storage classes when onlyStorage.
func runRESTSuite(t *testing.T, h *hostileEnv, onlyStorage bool) {
	u := 0
	total := 0
	for _, op := range h.api.ops() {
		for _, c := range h.restCases(t, op, &u) {
			if onlyStorage && !c.storage {
				continue
			}
			total++
			h.runREST(t, c)
		}
	}
	// Wrong methods on every path.
	for p, methods := range h.api.Paths {
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if _, ok := methods[strings.ToLower(m)]; ok || onlyStorage {
				continue
			}
			target := strings.NewReplacer("{connectionId}", "hc", "{senderId}", "hs", "{sendId}", h.sendID, "{profileId}", "fx", "{email}", "x@example.com").Replace(p)
			total++
			op := &openAPIOp{method: m, path: p, OperationID: "none"}
			h.runREST(t, restCase{op: op, method: m, class: "wrong-method", summary: m, target: target, body: []byte(`{}`)})
		}
	}
	h.fullSweep(t)
	t.Logf("%d REST cases, %d failures", total, h.failures)
}

// TestHostileREST runs every class on every route, on SQLite.
func TestHostileREST(t *testing.T) {
	runRESTSuite(t, newHostileEnv(t), false)
}

// TestHostileRESTPostgres runs the classes that can break a store on
// PostgreSQL, which refuses what SQLite keeps (NUL in text, say).
func TestHostileRESTPostgres(t *testing.T) {
	runRESTSuite(t, newHostileEnv(t, withPostgres()), true)
}

// ---------------------------------------------------------------------------
// gRPC.

type grpcMethodInfo struct {
	full   string
	stream bool
}

// grpcMethods lists the ibmail.v1 methods of the registered services.
func (h *hostileEnv) grpcMethods(t *testing.T) []grpcMethodInfo {
	var out []grpcMethodInfo
	for svc, info := range h.srv.GRPCServer().GetServiceInfo() {
		if !strings.HasPrefix(svc, "ibmail.v1.") {
			continue
		}
		for _, m := range info.Methods {
			out = append(out, grpcMethodInfo{full: "/" + svc + "/" + m.Name, stream: m.IsServerStream || m.IsClientStream})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].full < out[j].full })
	if len(out) == 0 {
		t.Fatal("no ibmail.v1 services registered")
	}
	return out
}

// responseOf returns the response message type of a method.
func (h *hostileEnv) responseOf(full string) (protoreflect.MessageType, error) {
	name := protoreflect.FullName(strings.ReplaceAll(strings.TrimPrefix(full, "/"), "/", "."))
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		return nil, err
	}
	md, ok := d.(protoreflect.MethodDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a method", name)
	}
	return protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
}

// requestOf returns the request message type of a method.
func (h *hostileEnv) requestOf(full string) (protoreflect.MessageType, error) {
	name := protoreflect.FullName(strings.ReplaceAll(strings.TrimPrefix(full, "/"), "/", "."))
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		return nil, err
	}
	md, ok := d.(protoreflect.MethodDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a method", name)
	}
	return protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
}

// grpcCase is one hostile gRPC call.
type grpcCase struct {
	method  grpcMethodInfo
	class   string
	field   string
	leaf    string
	summary string
	wire    []byte
	md      metadata.MD
	// libraryCode: a code grpc-go itself answers for this class, without
	// details (a message over the size limit; a request that does not
	// parse, which gRPC's status-code table assigns INTERNAL).
	libraryCode codes.Code
	mutating    bool
	// control is the case's tag (see uTag) for a webhook, whose baseline
	// holds a control item: a call answered OK must have stored it.
	control string
}

func (c grpcCase) String() string {
	f := c.field
	if f == "" {
		f = "-"
	}
	return fmt.Sprintf("gRPC %s [%s] field %s input %s", c.method.full, c.class, f, c.summary)
}

// invalidMarker is replaced in the wire form by invalidBytes, of the same
// length, so that a string field carries bytes that are not UTF-8.
const (
	invalidMarker = "IUTF8MARK"
	invalidBytes  = "I\xff\xfe\xfdMARK"
)

// grpcSite sets a hostile value in a clone of the baseline.
type grpcSite struct {
	name, leaf string
	fd         protoreflect.FieldDescriptor
	// parent finds (creating) the message holding fd in root.
	parent func(root protoreflect.Message) protoreflect.Message
}

func grpcSites(md protoreflect.MessageDescriptor, prefix string, parent func(protoreflect.Message) protoreflect.Message, depth int) []grpcSite {
	var out []grpcSite
	if depth > 5 {
		return nil
	}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := strings.TrimPrefix(prefix+"."+string(fd.Name()), ".")
		switch {
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap() && !isWellKnown(fd.Message()):
			child := func(root protoreflect.Message) protoreflect.Message {
				m := parent(root)
				if fd.IsList() {
					l := m.Mutable(fd).List()
					if l.Len() == 0 {
						return l.AppendMutable().Message()
					}
					return l.Get(0).Message()
				}
				return m.Mutable(fd).Message()
			}
			if fd.IsList() {
				name += "[0]"
			}
			out = append(out, grpcSites(fd.Message(), name, child, depth+1)...)
		default:
			out = append(out, grpcSite{name: name, leaf: string(fd.Name()), fd: fd, parent: parent})
		}
	}
	return out
}

func isWellKnown(md protoreflect.MessageDescriptor) bool {
	return strings.HasPrefix(string(md.FullName()), "google.protobuf.")
}

// grpcValue is one hostile value of a site.
type grpcValue struct {
	class, summary string
	set            func(m protoreflect.Message)
	invalid        bool
}

func (s grpcSite) values() []grpcValue {
	fd := s.fd
	var out []grpcValue
	setScalar := func(class, summary string, v protoreflect.Value) {
		out = append(out, grpcValue{class: class, summary: summary, set: func(m protoreflect.Message) {
			switch {
			case fd.IsMap():
				mp := m.Mutable(fd).Map()
				if fd.MapKey().Kind() == protoreflect.StringKind {
					mp.Set(protoreflect.ValueOfString("name").MapKey(), v)
				}
			case fd.IsList():
				l := m.Mutable(fd).List()
				if l.Len() == 0 {
					l.Append(v)
				} else {
					l.Set(0, v)
				}
			default:
				m.Set(fd, v)
			}
		}})
	}
	kind := fd.Kind()
	if fd.IsMap() {
		kind = fd.MapValue().Kind()
	}
	switch kind {
	case protoreflect.StringKind:
		for _, sc := range stringClasses {
			if sc.restOnly {
				continue
			}
			v := sc.v(secretFields[snakeToCamel(s.leaf)])
			if v.isRaw { // invalid UTF-8: patched into the wire form
				setScalar("string/"+sc.name, "bytes ff fe fd", protoreflect.ValueOfString(invalidMarker))
				out[len(out)-1].invalid = true
				continue
			}
			setScalar("string/"+sc.name, summarize(v.str), protoreflect.ValueOfString(v.str))
		}
		if strings.HasSuffix(s.leaf, "_at") {
			for _, tc := range infobipTimeClasses {
				setScalar("time/"+tc.name, tc.v(time.Now()), protoreflect.ValueOfString(tc.v(time.Now())))
			}
		}
		if fd.IsMap() {
			for _, sc := range []string{"x\x00y", "x\r\ny", strings.Repeat("k", 64<<10), ""} {
				out = append(out, grpcValue{class: "map-key", summary: summarize(sc), set: func(m protoreflect.Message) {
					m.Mutable(fd).Map().Set(protoreflect.ValueOfString(sc).MapKey(), protoreflect.ValueOfString("v"))
				}})
			}
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		for _, n := range grpcInt32Values {
			setScalar("int32", fmt.Sprint(n), protoreflect.ValueOfInt32(int32(n)))
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		for _, n := range grpcInt64Values {
			setScalar("int64", fmt.Sprint(n), protoreflect.ValueOfInt64(n))
		}
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		for _, f := range grpcDoubleValues {
			v := protoreflect.ValueOfFloat64(f)
			if kind == protoreflect.FloatKind {
				v = protoreflect.ValueOfFloat32(float32(f))
			}
			setScalar("double", fmt.Sprint(f), v)
		}
	case protoreflect.EnumKind:
		for _, n := range grpcEnumValues {
			setScalar("enum", fmt.Sprint(n), protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)))
		}
	case protoreflect.MessageKind:
		switch fd.Message().FullName() {
		case "google.protobuf.Timestamp":
			for _, ts := range grpcTimestamps {
				out = append(out, grpcValue{class: "timestamp/" + ts.name, summary: fmt.Sprintf("seconds %d nanos %d", ts.seconds, ts.nanos), set: func(m protoreflect.Message) {
					t := m.Mutable(fd).Message()
					t.Set(t.Descriptor().Fields().ByName("seconds"), protoreflect.ValueOfInt64(ts.seconds))
					t.Set(t.Descriptor().Fields().ByName("nanos"), protoreflect.ValueOfInt32(ts.nanos))
				}})
			}
		case "google.protobuf.FieldMask":
			for _, sc := range []string{"x\x00y", "x\r\ny", "api_key.x", "id", "webhook_secret", strings.Repeat("p", 64<<10)} {
				out = append(out, grpcValue{class: "field-mask", summary: summarize(sc), set: func(m protoreflect.Message) {
					fm := m.Mutable(fd).Message()
					fm.Mutable(fm.Descriptor().Fields().ByName("paths")).List().Append(protoreflect.ValueOfString(sc))
				}})
			}
		}
	case protoreflect.BoolKind, protoreflect.BytesKind:
		// Every bool value is valid; no request takes bytes.
	default:
		out = append(out, grpcValue{class: "unknown-kind:" + kind.String()})
	}
	return out
}

func snakeToCamel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// rawCodec sends and receives wire bytes as they are, so that a request
// can carry what the proto library would refuse to marshal.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func (h *hostileEnv) grpcCases(t *testing.T, m grpcMethodInfo, u *int) []grpcCase {
	mt, err := h.requestOf(m.full)
	if err != nil {
		t.Errorf("%s: %v", m.full, err)
		return nil
	}
	b, ok := hostileBaselines[m.full]
	if !ok {
		t.Errorf("gRPC %s: no baseline in hostileBaselines", m.full)
		return nil
	}
	wh := webhookOf(m.full)
	// tag is the tag of the last message newMsg made, for a webhook (whose
	// baseline holds a control item) only.
	tag := func() string {
		if wh == nil {
			return ""
		}
		return uTag(1000000 + *u)
	}
	newMsg := func() protoreflect.Message {
		*u++
		msg := mt.New()
		if err := protojson.Unmarshal([]byte(h.substitute(b.request, 1000000+*u)), msg.Interface()); err != nil {
			t.Fatalf("%s baseline: %v", m.full, err)
		}
		return msg
	}
	mutating := !strings.Contains(m.full, "/List") && !strings.Contains(m.full, "/Get") && !strings.Contains(m.full, "Classif") && !m.stream
	wire := func(msg protoreflect.Message, invalid bool) []byte {
		w, err := proto.Marshal(msg.Interface())
		if err != nil {
			t.Fatalf("%s: marshal: %v", m.full, err)
		}
		if invalid {
			w = bytes.ReplaceAll(w, []byte(invalidMarker), []byte(invalidBytes))
		}
		return w
	}
	cases := []grpcCase{{method: m, class: "baseline", wire: wire(newMsg(), false), mutating: mutating, control: tag()}}
	for _, s := range grpcSites(mt.Descriptor(), "", func(r protoreflect.Message) protoreflect.Message { return r }, 0) {
		for _, v := range s.values() {
			if v.set == nil {
				t.Errorf("gRPC %s: field %s has no hostile values (%s): add a class", m.full, s.name, v.class)
				continue
			}
			msg := newMsg()
			v.set(s.parent(msg))
			c := grpcCase{method: m, class: v.class, field: s.name, leaf: s.leaf, summary: v.summary, wire: wire(msg, v.invalid), mutating: mutating, control: tag()}
			if v.invalid {
				c.libraryCode = codes.Internal
			}
			if len(c.wire) > 2<<20 {
				c.libraryCode = codes.ResourceExhausted
			}
			cases = append(cases, c)
		}
	}
	auth := validAuth(m.full)
	good := wire(newMsg(), false)
	refused := []struct {
		name string
		md   metadata.MD
	}{
		{"two-authorization-valid-first", metadata.MD{"authorization": {auth, "Bearer wrong-token-0123456789"}}},
		{"two-authorization-valid-last", metadata.MD{"authorization": {"Bearer wrong-token-0123456789", auth}}},
		{"huge-authorization", metadata.MD{"authorization": {"Bearer " + strings.Repeat("x", 64<<10)}}},
	}
	if wh != nil {
		// A webhook's credential: exactly one, the Basic password or the
		// token metadata (what the REST gateway makes of ?token=).
		refused = append(refused, []struct {
			name string
			md   metadata.MD
		}{
			{"token-and-basic", metadata.MD{webhookTokenMD: {testSecret}, "authorization": {auth}}},
			{"two-tokens-valid-first", metadata.MD{webhookTokenMD: {testSecret, "wrong-token-0123456789"}}},
			{"two-tokens-valid-last", metadata.MD{webhookTokenMD: {"wrong-token-0123456789", testSecret}}},
			{"token-empty", metadata.MD{webhookTokenMD: {""}}},
			{"bearer-admin-token", metadata.MD{"authorization": {"Bearer " + hostileAdminToken}}},
		}...)
		tok := wire(newMsg(), false)
		cases = append(cases, grpcCase{method: m, class: "credential/token", summary: "token", wire: tok, mutating: true, control: tag(),
			md: metadata.MD{webhookTokenMD: {testSecret}}})
	}
	for _, mc := range refused {
		cases = append(cases, grpcCase{method: m, class: "metadata/" + mc.name, summary: mc.name, wire: good, md: mc.md})
	}
	return cases
}

func (h *hostileEnv) runGRPC(t *testing.T, c grpcCase) {
	t.Helper()
	fail := func(format string, args ...any) {
		h.failures++
		t.Errorf("%s: %s", c, fmt.Sprintf(format, args...))
	}
	md := c.md
	if md == nil {
		md = metadata.Pairs("authorization", validAuth(c.method.full))
	}
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), md), 60*time.Second)
	defer cancel()
	var out []byte
	var err error
	if c.method.stream {
		var s grpc.ClientStream
		s, err = h.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, c.method.full, grpc.ForceCodec(rawCodec{}))
		if err == nil {
			if err = s.SendMsg(c.wire); err == nil {
				s.CloseSend() //nolint:errcheck
				// The fixtures' events are in the log, so a stream that
				// was accepted sends one at once; a refused one fails.
				var first []byte
				err = s.RecvMsg(&first)
			}
		}
	} else {
		err = h.conn.Invoke(ctx, c.method.full, c.wire, &out, grpc.ForceCodec(rawCodec{}))
	}
	st := status.Convert(err)
	h.scanSecrets(c.String(), []byte(st.Message()+fmt.Sprint(st.Details())))
	if c.md != nil && strings.HasPrefix(c.class, "metadata/") {
		if st.Code() != codes.Unauthenticated && st.Code() != codes.InvalidArgument {
			fail("ambiguous or garbage credentials were not refused: %v", st.Code())
		}
		return
	}
	if err == nil {
		if wh := webhookOf(c.method.full); wh != nil {
			// A gRPC caller may send undecodable items of its own beside
			// the baseline's two: each must be accounted for too.
			sent, answered, accepted, ok := h.accounting(c.method.full, c.wire, out)
			if ok && sent != answered {
				fail("of %d items %d accounted for (accepted, duplicates, rejected)", sent, answered)
			}
			if profiles, others := h.afterWebhook(t, wh, c.control, true, accepted, fail); others {
				h.readBackWebhook(t, c.String(), profiles)
			}
		} else if c.mutating {
			h.readBack(t, c.String(), h.touchedGRPC(t, c, out))
		}
		return
	}
	if c.class == "credential/token" {
		fail("a call with the webhook secret as its token was refused: %v %s", st.Code(), trim(st.Message()))
		return
	}
	if c.class == "baseline" && hostileBaselines[c.method.full].want == 0 {
		// A refused baseline makes every case of the method a refusal
		// that tests nothing (a credential the suite sends wrongly, say).
		fail("the baseline was refused: %v %s", st.Code(), trim(st.Message()))
		return
	}
	if st.Code() == c.libraryCode && len(st.Details()) == 0 && strings.HasPrefix(st.Message(), "grpc: ") {
		return // grpc-go's own answer, before any handler
	}
	switch st.Code() {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented, codes.Unavailable:
		fail("code %v: %s", st.Code(), trim(st.Message()))
		return
	}
	var reason string
	var violations string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() == "ibmail.v1" {
				reason = d.GetReason()
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				violations += v.GetField() + ": " + v.GetDescription() + "; "
			}
		}
	}
	if reason == "" {
		fail("%v without an ErrorInfo of domain ibmail.v1: %s", st.Code(), trim(st.Message()))
	}
	if reason == string(server.ReasonInvalidArgument) && c.leaf != "" && !names(violations, c.leaf) {
		fail("the BadRequest does not name %s: %s / %s", c.leaf, trim(st.Message()), violations)
	}
}

func (h *hostileEnv) touchedGRPC(t *testing.T, c grpcCase, out []byte) []touchedProfile {
	fake := restCase{op: &openAPIOp{}}
	switch {
	case strings.HasSuffix(c.method.full, "/CreateSend"):
		var resp ibmailv1.CreateSendResponse
		proto.Unmarshal(out, &resp) //nolint:errcheck
		fake.op.path = "/v1/sends"
		b, _ := protojson.Marshal(&resp)
		return h.touched(t, fake, restResp{status: 200, body: b})
	case strings.HasSuffix(c.method.full, "/CreateConnection"):
		var resp ibmailv1.CreateConnectionResponse
		if proto.Unmarshal(out, &resp) == nil && resp.GetWebhookSecret() != "" {
			h.secrets = append(h.secrets, resp.GetWebhookSecret())
		}
	}
	return nil
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// TestHostileGRPC runs every class on every field of every registered
// ibmail.v1 method, through the gRPC stack (bufconn, the server's
// interceptors), on SQLite.
func TestHostileGRPC(t *testing.T) {
	h := newHostileEnv(t)
	u, total := 0, 0
	for _, m := range h.grpcMethods(t) {
		for _, c := range h.grpcCases(t, m, &u) {
			total++
			h.runGRPC(t, c)
		}
	}
	h.fullSweep(t)
	t.Logf("%d gRPC cases, %d failures", total, h.failures)
}

// ---------------------------------------------------------------------------
// Bodies: unauthenticated, oversized, slow.

// bodyLimitFields are the fields of server.Options that bound request
// bodies: every int64 field whose name ends in BodyBytes (MaxBodyBytes for
// the webhook today; the management API's limit of defect 2, whatever its
// name). The oversize test sets them all to one small limit.
func setBodyLimits(o *server.Options, limit int64) []string {
	var set []string
	v := reflect.ValueOf(o).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if strings.HasSuffix(f.Name, "BodyBytes") && f.Type.Kind() == reflect.Int64 {
			v.Field(i).SetInt(limit)
			set = append(set, f.Name)
		}
	}
	return set
}

// setTimeouts sets every time.Duration field of server.Options whose name
// ends in Timeout (ReadTimeout, IdleTimeout, BodyReadTimeout, …: defect 3)
// to d, and returns their names.
func setTimeouts(o *server.Options, d time.Duration) []string {
	var set []string
	v := reflect.ValueOf(o).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if strings.HasSuffix(f.Name, "Timeout") && f.Type == reflect.TypeOf(time.Duration(0)) {
			v.Field(i).SetInt(int64(d))
			set = append(set, f.Name)
		}
	}
	return set
}

// bodyRoutes are the operations that take a body.
func bodyRoutes(api *openAPI) []*openAPIOp {
	var out []*openAPIOp
	for _, op := range api.ops() {
		for _, p := range op.Parameters {
			if p.In == "body" {
				out = append(out, op)
				break
			}
		}
	}
	return out
}

// TestHostileUnauthenticatedBodyIsNotRead: a request without a valid
// credential is answered 401 before its body is read (defect 2). The client
// announces 256 MiB and streams it; a server that reads before checking the
// token consumes far more than the socket buffers hold before answering.
func TestHostileUnauthenticatedBodyIsNotRead(t *testing.T) {
	h := newHostileEnv(t)
	const announced, readLimit = 256 << 20, 32 << 20
	for _, op := range bodyRoutes(h.api) {
		t.Run(op.OperationID, func(t *testing.T) {
			base, _ := h.baselineMap(op.grpcMethod(), 0)
			target := h.derive(op, base).target(op, nil, "")
			pr, pw := io.Pipe()
			consumed := make(chan int64, 1)
			answered := make(chan struct{})
			go func() {
				chunk := bytes.Repeat([]byte(" "), 64<<10)
				var n int64
				defer func() { consumed <- n }()
				pw.Write([]byte(`{"zz":"`)) //nolint:errcheck
				for n < readLimit {
					select {
					case <-answered:
						pw.CloseWithError(errors.New("answered"))
						return
					default:
					}
					if _, err := pw.Write(chunk); err != nil {
						return
					}
					n += int64(len(chunk))
				}
				pw.CloseWithError(errors.New("the server keeps reading"))
			}()
			u, _ := url.Parse(h.rest.URL)
			req, _ := http.NewRequest(op.method, h.rest.URL, pr)
			req.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: target}
			req.ContentLength = announced
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer not-a-valid-token-0123456789")
			if webhookAt(op.path) != nil {
				req.SetBasicAuth("infobip", "not-the-secret")
			}
			resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
			close(answered)
			n := <-consumed
			if err != nil {
				t.Fatalf("%s: no answer before %d MiB of an unauthenticated body were read (defect 2): %v", op.route(), n>>20, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: status %d, want 401", op.route(), resp.StatusCode)
			}
			if n >= readLimit {
				t.Errorf("%s: the server read %d MiB of an unauthenticated body before answering (defect 2)", op.route(), n>>20)
			}
		})
	}
}

// TestHostileOversizedBody: with a valid credential, a body over the limit
// is answered 413 BODY_TOO_LARGE on every route, and a gRPC message over it
// ResourceExhausted (defect 2).
func TestHostileOversizedBody(t *testing.T) {
	const limit = 256 << 10
	var limits []string
	h := newHostileEnv(t, withServerOptions(func(o *server.Options) { limits = setBodyLimits(o, limit) }))
	t.Logf("body limits set to %d bytes: %v", limit, limits)
	pad := strings.Repeat("x", 4*limit)
	for _, op := range bodyRoutes(h.api) {
		base, _ := h.baselineMap(op.grpcMethod(), 0)
		r := h.derive(op, base)
		body := []byte(`{"zzPadding":"` + pad + `"}`)
		resp, err := h.send(op.method, r.target(op, nil, ""), nil, body)
		if err != nil {
			t.Errorf("%s: %v", op.route(), err)
			continue
		}
		_, reason, _ := h.parseStatus(resp)
		if resp.status != http.StatusRequestEntityTooLarge || reason != string(server.ReasonBodyTooLarge) {
			t.Errorf("%s: a %d KiB body over the %d KiB limit (options %v) got %d %s, want 413 BODY_TOO_LARGE (defect 2)",
				op.route(), len(body)>>10, limit>>10, limits, resp.status, trim(resp.excerpt()))
		}
	}
	u := 0
	for _, m := range h.grpcMethods(t) {
		if m.stream {
			continue
		}
		cases := h.grpcCases(t, m, &u)
		if len(cases) == 0 {
			continue
		}
		// Unknown field 1000, bytes: the server must not take it whole.
		wire := append(slices.Clone(cases[0].wire), protowireBytes(1000, make([]byte, 16*limit))...)
		// Each call carries its credential, so that the size limit, not
		// the credential check, is what refuses it.
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", validAuth(m.full))
		var out []byte
		err := h.conn.Invoke(ctx, m.full, wire, &out, grpc.ForceCodec(rawCodec{}))
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("gRPC %s: a %d KiB message got %v, want ResourceExhausted", m.full, len(wire)>>10, err)
		}
	}
}

// protowireBytes encodes a length-delimited field.
func protowireBytes(num int, b []byte) []byte {
	var out []byte
	out = appendVarint(out, uint64(num)<<3|2)
	out = appendVarint(out, uint64(len(b)))
	return append(out, b...)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// TestHostileSlowBodyIsCut: a body trickled a byte at a time is cut within
// the configured read timeout (defect 3). It sets every Options field named
// *Timeout (see setTimeouts) and serves through Server.Serve on loopback,
// as ibmaild does; without such a field it skips.
func TestHostileSlowBodyIsCut(t *testing.T) {
	const timeout = time.Second
	var set []string
	h := newHostileEnv(t, withServerOptions(func(o *server.Options) { set = setTimeouts(o, timeout) }))
	if len(set) == 0 {
		t.Skip("server.Options has no time.Duration field named *Timeout (such as ReadTimeout): defect 3 (slow bodies never " +
			"timed out) is not fixed yet; this test sets every such field to 1s and expects a trickled body cut within 10s")
	}
	grpcLis, _ := net.Listen("tcp", "127.0.0.1:0")
	httpLis, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ctx, grpcLis, httpLis, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	targets := []string{"/v1/sends"}
	for _, wh := range hostileWebhooks {
		targets = append(targets, wh.path)
	}
	for _, target := range targets {
		t.Run(strings.ReplaceAll(target, "/", "_"), func(t *testing.T) {
			conn, err := net.Dial("tcp", httpLis.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			auth := validAuth(target)
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: %s\r\nContent-Length: 100000\r\n\r\n{", target, auth)
			cut := make(chan struct{})
			go func() { io.Copy(io.Discard, conn); close(cut) }() //nolint:errcheck
			tick := time.NewTicker(timeout / 4)
			defer tick.Stop()
			deadline := time.After(10 * timeout)
			for {
				select {
				case <-cut:
					return
				case <-deadline:
					t.Fatalf("POST %s: a body trickled a byte every %v is still being read after %v (timeouts %v = %v; defect 3)", target, timeout/4, 10*timeout, set, timeout)
				case <-tick.C:
					conn.Write([]byte(" ")) //nolint:errcheck // the cut shows on the reader
				}
			}
		})
	}
}
