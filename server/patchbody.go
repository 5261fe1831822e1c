package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// patchBodies are the messages of the PATCH routes whose field mask the
// gateway derives from the body's keys (runtime.FieldMaskFromRequestBody),
// by the path parameter naming the resource. The gateway refused an unknown
// key there ("could not find field") while every other route ignores
// unknown fields, as the Infobip-facing routes must.
var patchBodies = map[string]protoreflect.MessageDescriptor{
	"connection_id": (&ibmailv1.Connection{}).ProtoReflect().Descriptor(),
}

// pruneUnknownPatchKeys drops the keys of a PATCH body that its message
// does not know, so that the derived field mask holds only real fields.
// A body that is not a JSON object is left for the decoder to refuse.
func pruneUnknownPatchKeys(r *http.Request, pathParams map[string]string) {
	if r.Method != http.MethodPatch || r.Body == nil || r.URL.Query().Has("updateMask") || r.URL.Query().Has("update_mask") {
		return
	}
	var md protoreflect.MessageDescriptor
	for param, d := range patchBodies {
		if _, ok := pathParams[param]; ok {
			md = d
		}
	}
	if md == nil {
		return
	}
	b, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var obj map[string]json.RawMessage
	if dec.Decode(&obj) != nil || dec.More() {
		return
	}
	if pruned, ok := pruneObject(obj, md); ok {
		r.Body = io.NopCloser(bytes.NewReader(pruned))
	}
}

// pruneObject removes unknown keys of obj, recursing into message fields;
// ok is false when nothing changed or it could not tell.
func pruneObject(obj map[string]json.RawMessage, md protoreflect.MessageDescriptor) ([]byte, bool) {
	changed := false
	for k, v := range obj {
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(k))
		}
		if fd == nil {
			delete(obj, k)
			changed = true
			continue
		}
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && len(v) > 0 && v[0] == '{' &&
			!strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
			var inner map[string]json.RawMessage
			if json.Unmarshal(v, &inner) == nil {
				if b, ok := pruneObject(inner, fd.Message()); ok {
					obj[k], changed = b, true
				}
			}
		}
	}
	if !changed {
		return nil, false
	}
	b, err := json.Marshal(obj)
	return b, err == nil
}
