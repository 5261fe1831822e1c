// Package apidocs serves the API's OpenAPI description and a page to browse
// it. The description is a copy of gen/openapi/ibmail.swagger.json (embed
// cannot reach into gen/, which buf regenerates from scratch);
// scripts/generate.sh refreshes the copy and CI fails when it is stale.
package apidocs

import (
	_ "embed"
	"net/http"
)

//go:embed ibmail.swagger.json
var description []byte

//go:embed index.html
var page []byte

// Register serves the description at /openapi.json and the page at /docs.
func Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(description) //nolint:errcheck // the client went away
	})
	mux.HandleFunc("GET /docs", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page) //nolint:errcheck // the client went away
	})
}

// Description returns the OpenAPI description. The server reads its routes
// from it to know, before it reads a body, which RPC a REST route calls.
func Description() []byte { return description }
