package server

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// checkParam refuses a path or query parameter value that no id, name or
// token of this API can hold: bytes that are not UTF-8 (the gateway could
// not put them into a protobuf string, and answered 500) and control
// characters (NUL breaks PostgreSQL text, CR/LF and escapes break logs and
// headers). It names the parameter and never echoes the value.
func checkParam(name, value string) error {
	if !utf8.ValidString(value) {
		return invalidField(name, "is not valid UTF-8")
	}
	if strings.IndexFunc(value, unicode.IsControl) >= 0 {
		return invalidField(name, "must not contain control characters")
	}
	return nil
}

// checkID is checkParam for an id taken from a body, such as callbackData's
// ibmailSendId: same characters, bounded length.
func checkID(field, id string, maxBytes int) error {
	if err := checkParam(field, id); err != nil {
		return err
	}
	if len(id) > maxBytes {
		return invalidField(field, fmt.Sprintf("is %d bytes long; at most %d", len(id), maxBytes))
	}
	return nil
}

// checkRequestParams checks every path parameter the gateway matched and
// every query parameter (names and values), before the gateway turns them
// into a gRPC request.
func checkRequestParams(r *http.Request, pathParams map[string]string) error {
	names := make([]string, 0, len(pathParams))
	for k := range pathParams {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := checkParam(k, pathParams[k]); err != nil {
			return err
		}
	}
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := checkParam("query parameter", k); err != nil {
			return err
		}
		for _, v := range q[k] {
			if err := checkParam(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// paramsMiddleware runs checkRequestParams on every routed call.
func (g *gateway) paramsMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, pathParams map[string]string) {
		if err := checkRequestParams(r, pathParams); err != nil {
			writeHTTPError(g.mux, w, r, err)
			return
		}
		pruneUnknownPatchKeys(r, pathParams)
		next(w, withBodyCopy(r), pathParams)
	}
}

// decodeFieldPattern finds the field protojson names in a decode error:
// `invalid value for string field subject`, `unknown field "x"`.
var decodeFieldPattern = regexp.MustCompile(`field "?([A-Za-z_][A-Za-z0-9_.]*)"?`)

// decodeError turns a body the gateway could not decode into MALFORMED_BODY
// naming the field, with a BadRequest field violation for it: the JSON path
// at the position protojson reports (invalid UTF-8, a bad Timestamp), else
// the field its message names.
func decodeError(r *http.Request, what string, st *status.Status) error {
	msg := safeText(st.Message(), maxMessageBytes)
	field := fieldAtError(r, st.Message())
	if field == "" {
		if m := decodeFieldPattern.FindStringSubmatch(msg); m != nil {
			field = m[1]
		}
	}
	if field == "" {
		return apiError(codes.InvalidArgument, ReasonMalformedBody, what+": "+msg)
	}
	field = safeText(field, 256)
	return apiError(codes.InvalidArgument, ReasonMalformedBody, what+": field "+field+": "+msg,
		&errdetails.BadRequest_FieldViolation{Field: field, Description: msg})
}
