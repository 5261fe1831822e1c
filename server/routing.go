package server

import (
	"context"
	"net/http"
	"net/http/httptest"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
)

// routingMethods are the methods the Allow header may list.
var routingMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// handleRoutingError answers a request no route takes as a google.rpc.Status
// with an ErrorInfo like every other error: 404 NOT_FOUND for an unknown
// path, 405 METHOD_NOT_ALLOWED (with Allow) for a known path and another
// method, where the gateway's default answered 501 without a reason.
func (g *gateway) handleRoutingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var err error
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		if allow := g.allowedMethods(r); allow != "" {
			w.Header().Set("Allow", allow)
		}
		err = apiError(codes.Unimplemented, ReasonMethodNotAllowed, "method "+safeText(r.Method, 32)+" is not allowed on this path")
	case http.StatusBadRequest:
		err = apiError(codes.InvalidArgument, ReasonInvalidArgument, "the request path is malformed")
	default:
		err = apiError(codes.NotFound, ReasonNotFound, "no such route: "+safeText(r.URL.Path, 256))
	}
	g.handleError(ctx, mux, m, w, r, err)
}

// allowedMethods lists the methods the path takes.
func (g *gateway) allowedMethods(r *http.Request) string {
	out := ""
	for _, method := range routingMethods {
		if g.routeProbe != nil && g.routeProbe.matches(r.Context(), method, r) {
			if out != "" {
				out += ", "
			}
			out += method
		}
	}
	return out
}

// routeProbe is a second gateway mux with the same routes whose handlers
// never run: a middleware records that a route matched and stops there. It
// answers "does this path take that method" with the gateway's own
// matching, which no public API of the gateway offers.
type routeProbe struct{ mux *runtime.ServeMux }

type probeMatchKey struct{}

func newRouteProbe(ctx context.Context, registers []gatewayRegister) *routeProbe {
	mux := runtime.NewServeMux(
		runtime.WithUnescapingMode(runtime.UnescapingModeAllCharacters),
		runtime.WithMiddlewares(func(runtime.HandlerFunc) runtime.HandlerFunc {
			return func(_ http.ResponseWriter, r *http.Request, _ map[string]string) {
				*(r.Context().Value(probeMatchKey{}).(*bool)) = true
			}
		}),
		runtime.WithRoutingErrorHandler(func(context.Context, *runtime.ServeMux, runtime.Marshaler, http.ResponseWriter, *http.Request, int) {}),
	)
	for _, register := range registers {
		// No call goes through the probe, so it needs no connection.
		if err := register(ctx, mux, nil); err != nil {
			return nil
		}
	}
	return &routeProbe{mux: mux}
}

func (p *routeProbe) matches(ctx context.Context, method string, r *http.Request) bool {
	matched := false
	req, err := http.NewRequestWithContext(context.WithValue(ctx, probeMatchKey{}, &matched), method, "/", nil)
	if err != nil {
		return false
	}
	req.URL = r.URL
	p.mux.ServeHTTP(httptest.NewRecorder(), req)
	return matched
}
