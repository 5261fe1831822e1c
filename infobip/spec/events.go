package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// TrackingNotificationTypes are the notificationType values the description
// names (in prose: the schema leaves the field a free string).
var TrackingNotificationTypes = []string{"OPENED", "CLICKED", "COMPLAINED", "LATE_BOUNCE", "UNSUBSCRIBED"}

// ValidateTrackingReport checks one body POSTed to a trackingUrl (one JSON
// object, one event) against the receive-email-tracking-reports webhook,
// with two differences, both from the description itself:
//
//   - messageId may be a string. The schema types it as a number, yet every
//     example the description gives, and real traffic, carry Infobip's
//     string ids; a number still passes, a string must not be empty.
//   - notificationType is required and must be one of
//     TrackingNotificationTypes, the values the field's description lists.
func (v *Validator) ValidateTrackingReport(body []byte) error {
	var problems []string
	checked := body
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) == nil && obj != nil {
		if raw, ok := obj["messageId"]; ok && len(raw) > 0 && raw[0] == '"' {
			var id string
			if json.Unmarshal(raw, &id) == nil && id == "" {
				problems = append(problems, "$.messageId: empty string")
			}
			// The schema sees a number; the string was checked here.
			obj["messageId"] = json.RawMessage("0")
			checked, _ = json.Marshal(obj)
		}
		var kind string
		raw, ok := obj["notificationType"]
		switch {
		case !ok:
			problems = append(problems, "missing property 'notificationType'")
		case json.Unmarshal(raw, &kind) == nil && !slices.Contains(TrackingNotificationTypes, kind):
			problems = append(problems, fmt.Sprintf("$.notificationType: %q is not one of %s", kind, strings.Join(TrackingNotificationTypes, ", ")))
		}
	}
	return merge("webhook "+WebhookTrackingReports, v.ValidateWebhook(WebhookTrackingReports, "application/json", checked), problems)
}

// uuidPattern is the textual form of a UUID, which the description asks of
// a platform event's eventId (format uuid; format assertions are off for
// the rest of the description, see build).
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ValidatePlatformEvent checks one body POSTed to a platform-events
// subscription against the receive-email-platform-events webhook, and then
// applies what the validator leaves out: eventDetails is checked against
// the schema its discriminator (type) maps to, HighDomainBounceWarnEvent or
// HighDomainBounceBlockEvent, whose required fields (domain, bounceRate,
// the threshold, scope, accountKey) the webhook's own schema does not
// reach; and eventId must be a UUID, as its format says.
func (v *Validator) ValidatePlatformEvent(body []byte) error {
	const what = "webhook " + WebhookPlatformEvents
	if err := v.ValidateWebhook(WebhookPlatformEvents, "application/json", body); err != nil {
		return err // the details make sense only in a valid envelope
	}
	var env struct {
		EventID      string          `json:"eventId"`
		EventDetails json.RawMessage `json:"eventDetails"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return &Error{What: what, Problems: []string{err.Error()}}
	}
	var problems []string
	if !uuidPattern.MatchString(env.EventID) {
		problems = append(problems, fmt.Sprintf("$.eventId: %q is not a UUID", env.EventID))
	}
	var details struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(env.EventDetails, &details) // the schema checked it is an object with a string type
	name, err := v.platformDetailsSchema(details.Type)
	if err != nil {
		return err
	}
	return merge(what, v.ValidateComponent(name, env.EventDetails), problems)
}

// platformDetailsSchema follows the discriminator of the webhook's
// eventDetails schema to the component named for typ.
func (v *Validator) platformDetailsSchema(typ string) (string, error) {
	payload, err := v.webhookSchema(WebhookPlatformEvents, "application/json")
	if err != nil {
		return "", err
	}
	if payload.Properties == nil {
		return "", fmt.Errorf("spec: webhook %s has no properties", WebhookPlatformEvents)
	}
	proxy, ok := payload.Properties.Get("eventDetails")
	if !ok || proxy == nil || proxy.Schema() == nil {
		return "", fmt.Errorf("spec: webhook %s has no eventDetails", WebhookPlatformEvents)
	}
	d := proxy.Schema().Discriminator
	if d == nil || d.Mapping == nil {
		return "", fmt.Errorf("spec: webhook %s: eventDetails has no discriminator mapping", WebhookPlatformEvents)
	}
	ref, ok := d.Mapping.Get(typ)
	if !ok {
		return "", fmt.Errorf("spec: webhook %s: no eventDetails schema for type %q", WebhookPlatformEvents, typ)
	}
	return strings.TrimPrefix(ref, "#/components/schemas/"), nil
}

// merge adds problems found by hand to a validator's error.
func merge(what string, err error, problems []string) error {
	if len(problems) == 0 {
		return err
	}
	if err == nil {
		return &Error{What: what, Problems: problems}
	}
	var se *Error
	if errors.As(err, &se) {
		return &Error{What: se.What, Problems: append(slices.Clone(se.Problems), problems...)}
	}
	return fmt.Errorf("%w; %s", err, strings.Join(problems, "; "))
}
