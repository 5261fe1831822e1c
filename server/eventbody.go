package server

import (
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// eventBody is a webhook whose Infobip body is one JSON object per event
// (the tracking and platform-event webhooks), where an operator replaying
// a backlog may post a JSON array of them instead. Each object is decoded
// on its own, after normalise has smoothed over the variants Infobip is
// known to send, so that one bad object refuses only itself.
type eventBody struct {
	itemwiseBody
	// normalise rewrites an object's members before decoding; nil: none.
	normalise func([]member) []member
}

// eventBodies are the requests decoded as eventBody.
var eventBodies = map[protoreflect.FullName]eventBody{
	(&ibmailv1.IngestTrackingReportsRequest{}).ProtoReflect().Descriptor().FullName(): {
		itemwiseBody: itemwiseBody{items: "reports", undecodable: "undecodable_reports"},
		normalise:    normaliseTrackingReport,
	},
	(&ibmailv1.IngestPlatformEventsRequest{}).ProtoReflect().Descriptor().FullName(): {
		itemwiseBody: itemwiseBody{items: "events", undecodable: "undecodable_events"},
	},
}

// errNotObjectOrArray is a body that is JSON but neither an object nor an
// array: refused whole.
var errNotObjectOrArray = errors.New("the body is neither a JSON object nor a JSON array of objects")

// unmarshalEventBody decodes an Infobip body of spec's webhook into msg: a
// JSON array is a list of events, an object one event, unless it holds
// the request's own list field (the API's form of the request, as a client
// generated from the description sends it), which then decodes item by
// item as unmarshalItemwise does.
func unmarshalEventBody(opts protojson.UnmarshalOptions, body []byte, msg proto.Message, spec eventBody) error {
	m := msg.ProtoReflect()
	fields := m.Descriptor().Fields()
	itemsFD, undecFD := fields.ByName(spec.items), fields.ByName(spec.undecodable)
	var elems [][]byte
	i := skipSpace(body, 0)
	switch {
	case i < len(body) && body[i] == '[':
		var err error
		if elems, err = splitArray(body); err != nil {
			return fmt.Errorf("%w: %v", errNotJSON, err)
		}
	case i < len(body) && body[i] == '{':
		members, err := splitObject(body)
		if err != nil {
			return fmt.Errorf("%w: %v", errNotJSON, err)
		}
		for _, mem := range members {
			name, err := unquoteKey(mem.key)
			if err != nil {
				return fmt.Errorf("%w: %v", errNotJSON, err)
			}
			if name == itemsFD.JSONName() || protoreflect.Name(name) == itemsFD.Name() {
				return unmarshalItemwise(opts, body, msg, spec.itemwiseBody)
			}
		}
		elems = [][]byte{body[i:]}
	default:
		if !json.Valid(body) {
			return errNotJSON
		}
		return errNotObjectOrArray
	}
	list := m.Mutable(itemsFD).List()
	undec := m.Mutable(undecFD).List()
	for n, raw := range elems {
		norm := raw
		if members, err := splitObject(raw); err == nil && spec.normalise != nil {
			norm = joinObject(spec.normalise(members))
		}
		item := list.NewElement()
		err := opts.Unmarshal(norm, item.Message().Interface())
		if err == nil {
			list.Append(item)
			continue
		}
		if !json.Valid(raw) {
			return fmt.Errorf("%w: item %d", errNotJSON, n)
		}
		field, reason := faultOf(opts, itemsFD.Message(), norm, err)
		u := &ibmailv1.UndecodableItem{Index: int32(n), Field: safeText(field, maxReasonBytes), Reason: safeText(reason, maxReasonBytes), Raw: raw}
		undec.Append(protoreflect.ValueOfMessage(u.ProtoReflect()))
	}
	return nil
}

// normaliseTrackingReport smooths over what Infobip has been seen to vary
// in tracking reports: `messageId` as a JSON number (its spec's type;
// every example has a string), and `geoLocationInfo` for `geoLocation`.
func normaliseTrackingReport(members []member) []member {
	hasGeo := false
	for _, mem := range members {
		if string(mem.key) == `"geoLocation"` {
			hasGeo = true
		}
	}
	for i, mem := range members {
		switch string(mem.key) {
		case `"messageId"`:
			if v := mem.value; len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
				members[i].value = []byte(`"` + string(v) + `"`)
			}
		case `"geoLocationInfo"`:
			if !hasGeo {
				members[i].key = []byte(`"geoLocation"`)
			}
		}
	}
	return members
}

// joinObject writes members back as one JSON object.
func joinObject(members []member) []byte {
	n := 2
	for _, mem := range members {
		n += len(mem.key) + len(mem.value) + 2
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	for i, mem := range members {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, mem.key...)
		out = append(out, ':')
		out = append(out, mem.value...)
	}
	return append(out, '}')
}
