package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// itemwiseBody names, for a request whose body is an array of independent
// items (a webhook's reports), the array's field and the field of
// ibmail.v1.UndecodableItem where the gateway puts the items that are JSON
// but do not decode. One bad item then refuses only itself, not the body.
type itemwiseBody struct {
	items, undecodable protoreflect.Name
}

// itemwiseBodies are the requests decoded item by item. The tracking and
// platform-event webhooks, whose Infobip bodies are bare objects, are in
// eventBodies.
var itemwiseBodies = map[protoreflect.FullName]itemwiseBody{
	(&ibmailv1.IngestDeliveryReportsRequest{}).ProtoReflect().Descriptor().FullName(): {
		items: "results", undecodable: "undecodable_results",
	},
}

// maxReasonBytes bounds the decoder's reason for an undecodable item, which
// may quote the value at fault (an 8 MiB string where a number goes).
const maxReasonBytes = 300

// errNotJSON is a body that is not JSON at all: refused whole.
var errNotJSON = errors.New("the body is not valid JSON")

// unmarshalItemwise decodes body into msg, of a type of itemwiseBodies. The
// common case, a body that decodes, is one protojson pass as for any other
// request. Only a body that fails is then split, with a scan that matches
// brackets and strings but decodes nothing, into its top-level fields and
// the array's items, and each item decoded on its own: the items that fail
// but are JSON go to the undecodable field with their index, field and raw
// bytes. A body that is not JSON, not an object, or whose array is not an
// array still fails whole.
func unmarshalItemwise(opts protojson.UnmarshalOptions, body []byte, msg proto.Message, spec itemwiseBody) error {
	m := msg.ProtoReflect()
	fields := m.Descriptor().Fields()
	itemsFD, undecFD := fields.ByName(spec.items), fields.ByName(spec.undecodable)
	whole := opts.Unmarshal(body, msg)
	if whole == nil {
		m.Clear(undecFD) // the gateway's own field, never the caller's
		return nil
	}
	proto.Reset(msg)
	members, err := splitObject(body)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotJSON, err)
	}
	var items []byte
	for _, mem := range members {
		name, err := unquoteKey(mem.key)
		if err != nil {
			return fmt.Errorf("%w: %v", errNotJSON, err)
		}
		switch protoreflect.Name(name) {
		case itemsFD.Name(), protoreflect.Name(itemsFD.JSONName()):
			if items != nil {
				return fmt.Errorf("%s is given twice", itemsFD.JSONName())
			}
			items = mem.value
		default:
			// Every other field decodes as usual, except the gateway's own,
			// which a body cannot set; unknown ones are discarded.
			if protoreflect.Name(name) == undecFD.Name() || name == undecFD.JSONName() {
				if !json.Valid(mem.value) {
					return fmt.Errorf("%w: field %s", errNotJSON, name)
				}
				continue
			}
			// protojson resets what it decodes into: decode apart, merge.
			one := append(append(append([]byte(`{`), mem.key...), ':'), mem.value...)
			part := m.New().Interface()
			if err := opts.Unmarshal(append(one, '}'), part); err != nil {
				return err
			}
			proto.Merge(msg, part)
		}
	}
	if items == nil || string(items) == "null" {
		return whole // no items: the whole body's error stands
	}
	elems, err := splitArray(items)
	if err != nil {
		if items[0] != '[' {
			return whole // not an array: the whole body's error stands
		}
		return fmt.Errorf("%w: %s: %v", errNotJSON, itemsFD.JSONName(), err)
	}
	list := m.Mutable(itemsFD).List()
	undec := m.Mutable(undecFD).List()
	for i, raw := range elems {
		item := list.NewElement()
		if err := opts.Unmarshal(raw, item.Message().Interface()); err == nil {
			list.Append(item)
			continue
		} else if !json.Valid(raw) {
			return fmt.Errorf("%w: %s[%d]", errNotJSON, itemsFD.JSONName(), i)
		} else {
			field, reason := faultOf(opts, itemsFD.Message(), raw, err)
			u := &ibmailv1.UndecodableItem{Index: int32(i), Field: safeText(field, maxReasonBytes), Reason: safeText(reason, maxReasonBytes), Raw: raw}
			undec.Append(protoreflect.ValueOfMessage(u.ProtoReflect()))
		}
	}
	return nil
}

// faultOf finds the field of an item that does not decode, by decoding its
// fields one at a time (and, for a message field, that field's own), and
// says why in protojson's words without their position.
func faultOf(opts protojson.UnmarshalOptions, md protoreflect.MessageDescriptor, raw []byte, err error) (field, reason string) {
	members, serr := splitObject(raw)
	if serr != nil {
		return "", "is not a JSON object"
	}
	for _, mem := range members {
		one := append(append(append([]byte(`{`), mem.key...), ':'), mem.value...)
		ferr := opts.Unmarshal(append(one, '}'), dynamicpb.NewMessage(md))
		if ferr == nil {
			continue
		}
		name, _ := unquoteKey(mem.key)
		if fd := fieldByJSON(md, name); fd != nil && fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() &&
			len(mem.value) > 0 && mem.value[0] == '{' {
			if sub, why := faultOf(opts, fd.Message(), mem.value, ferr); sub != "" {
				return name + "." + sub, why
			}
		}
		return name, protojsonReason(ferr)
	}
	return "", protojsonReason(err)
}

func fieldByJSON(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	if fd := md.Fields().ByJSONName(name); fd != nil {
		return fd
	}
	return md.Fields().ByName(protoreflect.Name(name))
}

// protojsonReason strips protojson's "proto: (line 1:13): " prefix, whose
// position is within the item, and bounds the rest.
func protojsonReason(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "proto:")
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "syntax error"))
	if strings.HasPrefix(s, "(line ") {
		if i := strings.Index(s, "):"); i >= 0 {
			s = strings.TrimSpace(s[i+2:])
		}
	}
	if len(s) > maxReasonBytes {
		s = strings.ToValidUTF8(s[:maxReasonBytes], "") + "…"
	}
	return s
}

func unquoteKey(key []byte) (string, error) {
	if bytes.IndexByte(key, '\\') < 0 {
		if !json.Valid(key) {
			return "", fmt.Errorf("key %s is not a JSON string", strconv.QuoteToASCII(string(key)))
		}
		return string(key[1 : len(key)-1]), nil
	}
	var s string
	if err := json.Unmarshal(key, &s); err != nil {
		return "", fmt.Errorf("key %s: %v", strconv.QuoteToASCII(string(key)), err)
	}
	return s, nil
}

// member is one "key": value of a JSON object, both as raw bytes.
type member struct{ key, value []byte }

// splitObject splits a JSON object into its members without decoding them.
func splitObject(b []byte) ([]member, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var out []member
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return out, trailing(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, fmt.Errorf("a key is expected at offset %d", i)
		}
		end, err := skipValue(b, i)
		if err != nil {
			return nil, err
		}
		key := b[i:end]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, fmt.Errorf("':' is expected at offset %d", i)
		}
		i = skipSpace(b, i+1)
		end, err = skipValue(b, i)
		if err != nil {
			return nil, err
		}
		out = append(out, member{key: key, value: b[i:end]})
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return out, trailing(b, i+1)
		}
		return nil, fmt.Errorf("',' or '}' is expected at offset %d", i)
	}
}

// splitArray splits a JSON array into its elements without decoding them.
func splitArray(b []byte) ([][]byte, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, errors.New("not an array")
	}
	var out [][]byte
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return out, trailing(b, i+1)
	}
	for {
		end, err := skipValue(b, i)
		if err != nil {
			return nil, err
		}
		out = append(out, b[i:end])
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			return out, trailing(b, i+1)
		}
		return nil, fmt.Errorf("',' or ']' is expected at offset %d", i)
	}
}

func trailing(b []byte, i int) error {
	if skipSpace(b, i) != len(b) {
		return fmt.Errorf("unexpected data after the value at offset %d", i)
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i]: strings
// with their escapes and nested brackets are matched, scalars run to the
// next delimiter. What it does not check (a scalar's or a string's
// content) the caller's decoding or json.Valid does.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("a value is expected at the end")
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, nil
			}
		}
		return 0, errors.New("unterminated string")
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipValue(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unterminated object or array")
	case ',', ':', '}', ']':
		return 0, fmt.Errorf("a value is expected at offset %d", i)
	default:
		j := i
		for j < len(b) && !strings.ContainsRune(" \t\n\r,:{}[]\"", rune(b[j])) {
			j++
		}
		return j, nil
	}
}
