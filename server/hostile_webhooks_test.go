package server_test

// The server's webhooks as the hostile-input suite (hostile_test.go) knows
// them. All three share their authentication (the server-wide or a
// connection's webhook secret, never a caller token), --max-body-bytes and
// the rule that nothing Infobip sends is lost; what differs is where their
// items sit in a body, and how the suite finds that an item was stored.

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/server"
)

// hostileWebhook is one webhook: its REST route and gRPC method, the list
// field of its body's API form, and its control item, item 1 of its
// baseline's body, which no case changes and which must be stored whenever
// the body is answered 200, whatever item 0 holds (defects 1 and 12).
type hostileWebhook struct {
	path, method string
	// items is the list field of the body's API form ({"results":[...]}):
	// a case changing a field under items[0] changes item 0 only.
	items string
	// list and listKey are the listing its stored items show in ("" when
	// they show in none), and stored the field of a listed row's report
	// that holds an item's key.
	list, listKey, stored string
	// control is the key of the control item (its messageId or eventId),
	// with {{u}} for the case's tag (see uTag).
	control string
	// controlDomain, when set, is the sending domain the control item is
	// about: a platform event is found among its domain's last events.
	controlDomain string
	// native: Infobip posts one item object or an array of them, not the
	// API form, so that the suite sends those forms too (nativeCases).
	native bool
}

// hostileWebhooks are the server's webhooks. A webhook of the server's
// OpenAPI description missing here is authenticated as a caller, so that
// its baseline fails TestHostileCoverage with 401.
var hostileWebhooks = []*hostileWebhook{
	{path: server.WebhookPath, method: ibmailv1.DeliveryReportService_IngestDeliveryReports_FullMethodName, items: "results",
		list: "/v1/deliveryReports", listKey: "reports", stored: "messageId", control: "m2-{{u}}"},
	{path: server.TrackingWebhookPath, method: ibmailv1.DeliveryReportService_IngestTrackingReports_FullMethodName, items: "reports",
		list: "/v1/trackingReports", listKey: "reports", stored: "eventId", control: "evc-{{u}}", native: true},
	{path: server.PlatformEventsWebhookPath, method: ibmailv1.DeliveryReportService_IngestPlatformEvents_FullMethodName, items: "events",
		control: "pc-{{u}}", controlDomain: "c{{u}}.example.com", native: true},
}

// webhookAt returns the webhook a request target (a path, perhaps with a
// query) goes to, or nil.
func webhookAt(target string) *hostileWebhook {
	p, _, _ := strings.Cut(target, "?")
	for _, wh := range hostileWebhooks {
		if p == wh.path {
			return wh
		}
	}
	return nil
}

// webhookOf returns the webhook of a gRPC method, or nil.
func webhookOf(method string) *hostileWebhook {
	for _, wh := range hostileWebhooks {
		if method == wh.method {
			return wh
		}
	}
	return nil
}

// webhookTokenMD is the gRPC metadata key of a webhook's credential other
// than a Basic password: what the REST gateway makes of ?token=.
const webhookTokenMD = "x-ibmail-webhook-token"

// basicCredential is an Authorization value with secret as the Basic
// password, as Infobip sends a webhook's credential.
func basicCredential(secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("infobip:"+secret))
}

// validAuth is the Authorization a call of method (a gRPC method or a
// REST target) carries: the server-wide webhook secret for a webhook, the
// admin token for the rest.
func validAuth(method string) string {
	if webhookOf(method) != nil || webhookAt(method) != nil {
		return basicCredential(testSecret)
	}
	return "Bearer " + hostileAdminToken
}

// uTag is the text a baseline's {{u}} becomes for case u.
func uTag(u int) string { return fmt.Sprintf("h%d", u) }

func (wh *hostileWebhook) controlKey(tag string) string {
	return strings.ReplaceAll(wh.control, "{{u}}", tag)
}

// storedItem is an item a webhook stored: its key (messageId or eventId)
// and its profile, with the message id its event must show for an item
// classified as an event.
type storedItem struct {
	key     string
	profile touchedProfile
}

// newStored returns the items the webhook stored since the last call, as
// its listing shows them (none for a webhook without one).
func (h *hostileEnv) newStored(t *testing.T, wh *hostileWebhook) []storedItem {
	t.Helper()
	if wh.list == "" {
		return nil
	}
	last := h.lastStored[wh.path]
	id, rows := h.newest(t, wh.list, wh.listKey)
	var out []storedItem
	for _, r := range rows {
		if n, _ := strconv.ParseInt(fmt.Sprint(r["id"]), 10, 64); n > last {
			report, _ := r["report"].(map[string]any)
			it := storedItem{key: fmt.Sprint(report[wh.stored]), profile: touchedProfile{id: fmt.Sprint(r["profileId"])}}
			if cl, _ := r["classification"].(map[string]any); cl["outcome"] == "REPORT_OUTCOME_EVENT" {
				it.profile.messageID, _ = report["messageId"].(string)
			}
			out = append(out, it)
		}
	}
	h.lastStored[wh.path] = max(last, id)
	return out
}

// afterWebhook reads what a webhook call stored and, when it was answered
// OK (accepted: the answer's count of newly stored items), checks that the
// control item of the case tagged tag ("" for none) was stored. It returns
// the profiles of the other items stored and whether there were any: the
// control item is the baseline's own, so only the others can break a read
// (and the rejected payloads a call kept, which newRejected reads).
func (h *hostileEnv) afterWebhook(t *testing.T, wh *hostileWebhook, tag string, answered bool, accepted int, fail func(string, ...any)) ([]touchedProfile, bool) {
	t.Helper()
	control := ""
	if tag != "" {
		control = wh.controlKey(tag)
	}
	keys := map[string]bool{}
	var profiles []touchedProfile
	others := false
	for _, it := range h.newStored(t, wh) {
		keys[it.key] = true
		if it.key != control {
			profiles, others = append(profiles, it.profile), true
		}
	}
	if answered && tag != "" {
		h.checkControl(t, wh, tag, keys, fail)
	}
	if wh.list == "" && answered {
		// No listing: the answer's count says whether more than the
		// control item was stored.
		others = accepted > boolInt(tag != "")
	}
	return profiles, others
}

// checkControl fails unless the control item of the case tagged tag was
// stored; keys are what newStored found.
func (h *hostileEnv) checkControl(t *testing.T, wh *hostileWebhook, tag string, keys map[string]bool, fail func(string, ...any)) {
	t.Helper()
	key := wh.controlKey(tag)
	if wh.controlDomain == "" {
		if !keys[key] {
			fail("the body was answered 200 but its untouched item 1 (%s) was not stored: one item's content cost another its place (defect 12)", key)
		}
		return
	}
	domain := strings.ReplaceAll(wh.controlDomain, "{{u}}", tag)
	resp, err := h.send("GET", "/v1/sendingDomains/"+url.PathEscape(domain), nil, nil)
	if err != nil || resp.status != 200 {
		fail("the body was answered 200 but the domain of its untouched item 1 (%s) is unknown: GET /v1/sendingDomains/%s: %v %d %s",
			key, domain, err, resp.status, resp.excerpt())
		return
	}
	d, _ := resp.json()["sendingDomain"].(map[string]any)
	events, _ := d["lastEvents"].([]any)
	for _, e := range events {
		if m, _ := e.(map[string]any); m["eventId"] == key {
			return
		}
	}
	fail("the body was answered 200 but its untouched item 1 (%s) is not among the events of its domain %s: %s", key, domain, resp.excerpt())
}

// accounting counts the items of a webhook's gRPC request (decodable or
// not), the items its response accounts for (accepted, duplicates and
// rejected) and those it accepted, from the messages' fields, so that
// every webhook is counted alike.
func (h *hostileEnv) accounting(method string, wire, out []byte) (sent, answered, accepted int, ok bool) {
	in, err := h.requestOf(method)
	if err != nil {
		return 0, 0, 0, false
	}
	req := in.New()
	if proto.Unmarshal(wire, req.Interface()) != nil {
		return 0, 0, 0, false
	}
	req.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.IsList() && fd.Kind() == protoreflect.MessageKind {
			sent += v.List().Len()
		}
		return true
	})
	outType, err := h.responseOf(method)
	if err != nil {
		return 0, 0, 0, false
	}
	resp := outType.New()
	if proto.Unmarshal(out, resp.Interface()) != nil {
		return 0, 0, 0, false
	}
	fields := resp.Descriptor().Fields()
	if fd := fields.ByName("accepted"); fd != nil {
		accepted = int(resp.Get(fd).Int())
	}
	answered = accepted
	if fd := fields.ByName("duplicates"); fd != nil {
		answered += int(resp.Get(fd).Int())
	}
	if fd := fields.ByName("rejected"); fd != nil {
		answered += resp.Get(fd).List().Len()
	}
	return sent, answered, accepted, true
}
