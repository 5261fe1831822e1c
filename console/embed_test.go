package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /console/", Handler())
	tests := []struct {
		path, wantType, wantBody string
	}{
		{"/console/", "text/html", `<div id="status"`},
		{"/console/index.html", "text/html", `<div id="status"`},
		// A page's own route, or a file that is not there, gets index.html.
		{"/console/connections", "text/html", `<div id="status"`},
		{"/console/../../etc/passwd", "text/html", `<div id="status"`},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		// The mux itself redirects an unclean path to its clean form.
		if rec.Code/100 == 3 {
			continue
		}
		if rec.Code != http.StatusOK {
			t.Errorf("%s: status %d", tt.path, rec.Code)
			continue
		}
		if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, tt.wantType) {
			t.Errorf("%s: Content-Type = %q, want %s", tt.path, got, tt.wantType)
		}
		if !strings.Contains(rec.Body.String(), tt.wantBody) {
			t.Errorf("%s: body lacks %q", tt.path, tt.wantBody)
		}
		if got := rec.Header().Get("Content-Security-Policy"); !strings.HasPrefix(got, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy = %q", tt.path, got)
		}
		if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", tt.path, got)
		}
	}
}

// TestIndexLoadsOnlyOwnFiles: the built page names no other origin.
func TestIndexLoadsOnlyOwnFiles(t *testing.T) {
	b, err := dist.ReadFile("dist/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"http://", "https://", "//cdn", "<style", "style="} {
		if strings.Contains(string(b), bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	if !strings.Contains(string(b), `src="/console/assets/`) {
		t.Errorf("index.html does not load its script from /console/assets/:\n%s", b)
	}
}
