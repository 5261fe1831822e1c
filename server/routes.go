package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/ibmail/ibmail/apidocs"
)

// restRoutes maps each REST route to the gRPC method it calls, so that the
// gateway can check the caller's token and bound the body by the method
// before it reads a byte of the body. It is read from the OpenAPI
// description, which protoc-gen-openapiv2 generates from the same HTTP rules
// as the gateway; the key is the HTTP method and the path template with
// its variables blanked, as the gateway's matched pattern gives it too, so
// that the gateway's own match (made once) finds the method.
type restRoutes map[string]string

// templateVariable is a path variable, {name} or {name=pattern}.
var templateVariable = regexp.MustCompile(`\{[^}]*\}`)

func routeKey(httpMethod, template string) string {
	return httpMethod + " " + templateVariable.ReplaceAllString(template, "{}")
}

// parseRESTRoutes reads the routes of an OpenAPI v2 description. Every
// operation must name a registered ibmail.v1 method, so that a stale
// description fails the start rather than a call.
func parseRESTRoutes(openapi []byte) (restRoutes, error) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi, &doc); err != nil {
		return nil, fmt.Errorf("OpenAPI description: %w", err)
	}
	routes := restRoutes{}
	for path, ops := range doc.Paths {
		for verb, raw := range ops {
			switch strings.ToUpper(verb) {
			case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			default:
				continue // path-level parameters and extensions
			}
			var op struct {
				OperationID string `json:"operationId"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("OpenAPI %s %s: %w", verb, path, err)
			}
			svc, method, ok := strings.Cut(op.OperationID, "_")
			if !ok {
				return nil, fmt.Errorf("OpenAPI %s %s: operationId %q is not Service_Method", verb, path, op.OperationID)
			}
			d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName("ibmail.v1." + svc))
			sd, isService := d.(protoreflect.ServiceDescriptor)
			if err != nil || !isService || sd.Methods().ByName(protoreflect.Name(method)) == nil {
				return nil, fmt.Errorf("OpenAPI %s %s: no method ibmail.v1.%s/%s", verb, path, svc, method)
			}
			routes[routeKey(strings.ToUpper(verb), path)] = "/ibmail.v1." + svc + "/" + method
		}
	}
	return routes, nil
}

// method returns the gRPC method of the route the gateway matched.
func (rt restRoutes) method(httpMethod string, p runtime.Pattern) (string, bool) {
	m, ok := rt[routeKey(httpMethod, p.String())]
	return m, ok
}

// RESTRoutes returns every REST route, as "METHOD /path/{}", and the gRPC
// method it calls: for the tests that keep every route guarded.
func RESTRoutes() (map[string]string, error) {
	return parseRESTRoutes(apidocs.Description())
}
