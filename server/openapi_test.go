package server

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ibmail/ibmail/apidocs"
)

// openapiDoc is the part of the generated OpenAPI 2.0 description the test
// reads: who may call each operation and what it answers.
type openapiDoc struct {
	Info struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"info"`
	SecurityDefinitions map[string]struct {
		Type string `json:"type"`
		In   string `json:"in"`
		Name string `json:"name"`
	} `json:"securityDefinitions"`
	Security []map[string][]string `json:"security"`
	Paths    map[string]map[string]struct {
		OperationID string                `json:"operationId"`
		Security    []map[string][]string `json:"security"`
		Responses   map[string]struct {
			Schema struct {
				Ref string `json:"$ref"`
			} `json:"schema"`
		} `json:"responses"`
	} `json:"paths"`
}

// schemeNames lists the scheme names of a security requirement list, one
// entry per alternative.
func schemeNames(reqs []map[string][]string) []string {
	var names []string
	for _, req := range reqs {
		var keys []string
		for k := range req {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		names = append(names, strings.Join(keys, "+"))
	}
	slices.Sort(names)
	return names
}

// TestOpenAPIDeclaresSecurityAndErrors fails when an operation of the
// generated description (the copy the server serves) has no security, the
// wrong one, or no default error response: proto/ibmail/v1/openapi.yaml must
// grow with the routes. The webhook set is the one the auth interceptor uses
// (isWebhookMethod), so the description and the server cannot disagree.
func TestOpenAPIDeclaresSecurityAndErrors(t *testing.T) {
	var doc openapiDoc
	if err := json.Unmarshal(apidocs.Description(), &doc); err != nil {
		t.Fatalf("apidocs/ibmail.swagger.json: %v", err)
	}
	if doc.Info.Title != "ibmail API" || doc.Info.Version == "" || doc.Info.Version == "version not set" {
		t.Errorf("info = %q %q, want title %q and a version", doc.Info.Title, doc.Info.Version, "ibmail API")
	}
	wantDefs := map[string]string{"bearer": "apiKey/header/Authorization", "webhookBasic": "basic//", "webhookToken": "apiKey/query/token"}
	for name, want := range wantDefs {
		d := doc.SecurityDefinitions[name]
		if got := d.Type + "/" + d.In + "/" + d.Name; got != want {
			t.Errorf("securityDefinitions[%s] = %s, want %s", name, got, want)
		}
	}

	bearer := []string{"bearer"}
	webhook := []string{"webhookBasic", "webhookToken"} // either one
	seenWebhooks := 0
	for path, ops := range doc.Paths {
		for verb, op := range ops {
			where := strings.ToUpper(verb) + " " + path
			svc, meth, ok := strings.Cut(op.OperationID, "_")
			if !ok {
				t.Errorf("%s: operationId %q is not Service_Method", where, op.OperationID)
				continue
			}
			reqs := op.Security
			if reqs == nil {
				reqs = doc.Security // the file's default
			}
			want := bearer
			if isWebhookMethod("/ibmail.v1." + svc + "/" + meth) {
				want = webhook
				seenWebhooks++
			}
			if got := schemeNames(reqs); !slices.Equal(got, want) {
				t.Errorf("%s (%s): security = %v, want %v", where, op.OperationID, got, want)
			}
			if got := op.Responses["default"].Schema.Ref; got != "#/definitions/rpcStatus" {
				t.Errorf("%s (%s): default response = %q, want the google.rpc.Status error body", where, op.OperationID, got)
			}
		}
	}
	if seenWebhooks != len(webhookRoutes) {
		t.Errorf("found %d webhook operations, want %d (webhookRoutes)", seenWebhooks, len(webhookRoutes))
	}
}
