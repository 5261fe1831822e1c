package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ibmail/ibmail/apidocs"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
)

// gatewayMarshaler writes JSON with Infobip's and the API's lowerCamel
// names, emits empty values (so that "eventName": "" is present) and ignores
// unknown fields, which Infobip adds from time to time.
var gatewayMarshaler = &runtime.HTTPBodyMarshaler{Marshaler: gatewayJSON}

var gatewayJSON = &directJSONPb{JSONPb: runtime.JSONPb{
	MarshalOptions:   protojson.MarshalOptions{EmitDefaultValues: true},
	UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
}}

// directJSONPb decodes a whole-message body with one protojson pass (the
// webhooks' bodies item by item when that pass fails, see
// unmarshalItemwise). The
// gateway's own decoder first scans the body with encoding/json into a raw
// message and then parses it again: on webhook bodies of hundreds of
// reports that double parse was a fifth of the ingest CPU.
type directJSONPb struct {
	runtime.JSONPb
}

// NewDecoder returns a decoder that parses proto messages directly and
// leaves everything else to the gateway's decoder.
func (m *directJSONPb) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		msg, ok := v.(proto.Message)
		if !ok {
			return m.JSONPb.NewDecoder(r).Decode(v)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return m.decode(b, msg)
	})
}

// decode is what NewDecoder's decoder does with a body read whole.
func (m *directJSONPb) decode(b []byte, msg proto.Message) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return io.EOF // an empty body is an empty request, as with the gateway's decoder
	}
	return decodeRequestBody(m.UnmarshalOptions, b, msg)
}

// rawBodyKey carries a webhook body through the gateway, so that a body the
// gateway or the service refuses can still be kept.
type rawBodyKey struct{}

type rawBody struct {
	contentType string
	body        []byte
}

// gateway is the REST face of the services: grpc-gateway over an in-process
// connection of its own (inprocConn), behind the guard that checks the caller's
// token and bounds the body before anything reads it.
type gateway struct {
	mux *runtime.ServeMux
	// conn is the gateway's connection to the services.
	conn   grpc.ClientConnInterface
	store  store.Store
	auth   WebhookAuthenticator
	tokens *tokenAuth
	routes restRoutes
	// maxBodyBytes bounds the webhook's bodies, maxAPIBodyBytes those of
	// every other route.
	maxBodyBytes    int64
	maxAPIBodyBytes int64
	log             *slog.Logger
	// routeProbe answers which methods a path takes, for 405's Allow header.
	routeProbe *routeProbe
}

// gatewayRegister registers one service's REST routes on a gateway mux,
// their calls going over conn.
type gatewayRegister func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error

// viaClient makes a gatewayRegister of a service's generated
// Register...HandlerClient, which takes any connection (the generated
// Register...Handler takes only a *grpc.ClientConn).
func viaClient[C any](register func(context.Context, *runtime.ServeMux, C) error, newClient func(grpc.ClientConnInterface) C) gatewayRegister {
	return func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
		return register(ctx, mux, newClient(conn))
	}
}

func newGateway(ctx context.Context, conn grpc.ClientConnInterface, g *gateway) (*gateway, error) {
	routes, err := parseRESTRoutes(apidocs.Description())
	if err != nil {
		return nil, err
	}
	g.routes = routes
	g.conn = conn
	g.mux = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, gatewayMarshaler),
		runtime.WithErrorHandler(g.handleError),
		runtime.WithMetadata(webhookTokenMetadata),
		// Profile ids are often email addresses; decode %40 and friends.
		runtime.WithUnescapingMode(runtime.UnescapingModeAllCharacters),
		runtime.WithRoutingErrorHandler(g.handleRoutingError),
		// The fallback parses a form body to route a POST as a GET, before
		// any handler (and so before the token check) runs; the API has
		// no use for it.
		runtime.WithDisablePathLengthFallback(),
		// The token first: an unauthenticated caller learns nothing of
		// the parameters' rules, and no body is read before it passes.
		runtime.WithMiddlewares(g.guard, g.paramsMiddleware),
	)
	registers := []gatewayRegister{
		viaClient(ibmailv1.RegisterClassifierServiceHandlerClient, ibmailv1.NewClassifierServiceClient),
		viaClient(ibmailv1.RegisterDeliveryReportServiceHandlerClient, ibmailv1.NewDeliveryReportServiceClient),
		viaClient(ibmailv1.RegisterProfileServiceHandlerClient, ibmailv1.NewProfileServiceClient),
		viaClient(ibmailv1.RegisterConnectionServiceHandlerClient, ibmailv1.NewConnectionServiceClient),
		viaClient(ibmailv1.RegisterSenderServiceHandlerClient, ibmailv1.NewSenderServiceClient),
		viaClient(ibmailv1.RegisterSendServiceHandlerClient, ibmailv1.NewSendServiceClient),
		viaClient(ibmailv1.RegisterSuppressionServiceHandlerClient, ibmailv1.NewSuppressionServiceClient),
		viaClient(ibmailv1.RegisterSendingDomainServiceHandlerClient, ibmailv1.NewSendingDomainServiceClient),
		viaClient(ibmailv1.RegisterRuleServiceHandlerClient, ibmailv1.NewRuleServiceClient),
		viaClient(ibmailv1.RegisterOperationServiceHandlerClient, ibmailv1.NewOperationServiceClient),
		viaClient(ibmailv1.RegisterAccessServiceHandlerClient, ibmailv1.NewAccessServiceClient),
	}
	g.routeProbe = newRouteProbe(ctx, registers)
	for _, register := range registers {
		if err := register(ctx, g.mux, conn); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// webhookTokenMetadata passes the webhook's `token` query parameter on as
// gRPC metadata; the gateway binds no query parameters for body:"*" routes.
func webhookTokenMetadata(_ context.Context, r *http.Request) metadata.MD {
	if _, ok := webhookRoutes[r.URL.Path]; !ok {
		return nil
	}
	if t := r.URL.Query().Get("token"); t != "" {
		return metadata.Pairs(webhookTokenKey, t)
	}
	return nil
}

// ServeHTTP shuts the body until the call is authenticated, guards the
// webhook, then lets the gateway route the call, which passes guard.
func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := &gatedBody{src: r.Body, w: w}
	r.Body = body
	r = r.WithContext(context.WithValue(r.Context(), gatedBodyKey{}, body))
	if route, ok := webhookRoutes[r.URL.Path]; ok && r.Method == http.MethodPost {
		g.serveWebhook(w, r, route, body)
		return
	}
	g.mux.ServeHTTP(w, r)
}

// guard runs once the gateway has matched a route, before the route's
// handler reads the body: it finds the route's RPC, makes the one token
// check on the metadata the call would carry, and only then opens the body,
// bounded by the RPC's limit. A refused call reads no byte of its body.
func (g *gateway) guard(next runtime.HandlerFunc) runtime.HandlerFunc {
	// The gateway wraps each route's handler in a guard of its own, so that
	// a guard only ever sees its route's pattern: the route's RPC is found
	// on the first call and kept, as the lookup (formatting the pattern,
	// a regexp) was a tenth of the gateway's cost on a small webhook body.
	var found atomic.Pointer[guardedRoute]
	return func(w http.ResponseWriter, r *http.Request, pathParams map[string]string) {
		var method string
		if f := found.Load(); f != nil && f.httpMethod == r.Method {
			method = f.rpc
		} else if p, ok := runtime.HTTPPattern(r.Context()); ok {
			if method, _ = g.routes.method(r.Method, p); method != "" {
				found.Store(&guardedRoute{httpMethod: r.Method, rpc: method})
			}
		}
		if method == "" {
			// A route the gateway serves but the description lacks: a
			// build out of step; refuse rather than guess its role.
			g.log.Error("REST route without an RPC in the route table", slog.String("method", r.Method), slog.String("path", r.URL.Path))
			writeHTTPError(g.mux, w, r, apiError(codes.Internal, ReasonInternal, "internal error"))
			return
		}
		if g.tokens.needsToken(method) || annotationMayFail(r) {
			// The check reads the metadata the call would carry. A call
			// that needs no token skips building it (the route's handler
			// builds it again), unless building it may refuse the call,
			// which must then happen here, before the body's limit is.
			ctx, err := runtime.AnnotateIncomingContext(r.Context(), g.mux, r, method)
			if err == nil {
				err = g.tokens.authenticate(ctx, method)
				if err != nil {
					observeRPC(ctx, g.log, method, status.Code(err), 0)
				}
			}
			if err != nil {
				writeHTTPError(g.mux, w, r, err)
				return
			}
		}
		body, _ := r.Context().Value(gatedBodyKey{}).(*gatedBody)
		if body == nil {
			writeHTTPError(g.mux, w, r, apiError(codes.Internal, ReasonInternal, "internal error"))
			return
		}
		if err := body.open(g.bodyLimit(method), r.ContentLength); err != nil {
			writeHTTPError(g.mux, w, r, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), gatewayAuthorizedKey{}, method)), pathParams)
	}
}

// guardedRoute is the RPC a guard found for its route.
type guardedRoute struct{ httpMethod, rpc string }

// annotationMayFail tells whether the gateway's metadata for r could fail
// to build: only a Grpc-Timeout header or a binary (-Bin) header can make
// it fail.
func annotationMayFail(r *http.Request) bool {
	for k := range r.Header {
		if strings.EqualFold(k, "Grpc-Timeout") || (len(k) > 4 && strings.EqualFold(k[len(k)-4:], "-Bin")) {
			return true
		}
	}
	return false
}

// bodyLimit is the largest body method's route takes.
func (g *gateway) bodyLimit(method string) int64 {
	if isWebhookMethod(method) {
		return g.maxBodyBytes
	}
	return g.maxAPIBodyBytes
}

// gatewayAuthorizedKey carries the RPC that guard authenticated a REST
// call for, to the gateway's connection (inprocConn.Invoke), which refuses
// a call for any other.
type gatewayAuthorizedKey struct{}

// gatedBodyKey carries a request's gatedBody.
type gatedBodyKey struct{}

// errBodyShut is what reading a body before its call is authenticated
// gives: nothing of it.
var errBodyShut = apiError(codes.Internal, ReasonInternal, "internal error: the body was read before the call was authenticated")

// gatedBody is a REST request's body: shut until open, then bounded by a
// limit. It remembers why a read failed, so that the answer says so (413,
// 408) rather than calling the body malformed.
type gatedBody struct {
	src    io.ReadCloser
	w      http.ResponseWriter
	r      io.Reader
	limit  int64
	failed error
}

// open lets the body be read, up to limit bytes; a declared length over
// the limit is refused at once, without reading.
func (b *gatedBody) open(limit, declared int64) error {
	b.limit = limit
	if declared > limit {
		b.failed = &http.MaxBytesError{Limit: limit}
		return b.failure()
	}
	b.r = http.MaxBytesReader(b.w, b.src, limit)
	return nil
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if b.r == nil {
		return 0, errBodyShut
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.failed == nil {
		b.failed = err
	}
	return n, err
}

func (b *gatedBody) Close() error { return b.src.Close() }

// failure is the error to answer when reading the body failed for a reason
// of its own (too large, too slow), or nil.
func (b *gatedBody) failure() error {
	var tooLarge *http.MaxBytesError
	switch {
	case b.failed == nil:
		return nil
	case errors.As(b.failed, &tooLarge):
		return apiError(codes.ResourceExhausted, ReasonBodyTooLarge,
			"the body is larger than this call's limit of "+formatBytes(tooLarge.Limit))
	case errors.Is(b.failed, errBodyTooSlow):
		return errBodyTimeout
	}
	return nil
}

// serveWebhook answers what the gateway cannot express (401 before the body
// is read, 415, 413) and keeps the raw body for the error handler.
func (g *gateway) serveWebhook(w http.ResponseWriter, r *http.Request, route webhookRoute, gated *gatedBody) {
	credential := oneWebhookCredential(r.Header.Values("Authorization"), r.URL.Query()["token"])
	connectionID, err := authenticateWebhook(r.Context(), g.auth, credential)
	if err != nil {
		writeHTTPError(g.mux, w, r, toStatus(err))
		return
	}
	contentType := r.Header.Get("Content-Type")
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || mt != "application/json" {
			writeHTTPError(g.mux, w, r, apiError(codes.InvalidArgument, ReasonUnsupportedMedia,
				"content type "+quoteOrEmpty(contentType)+" is not supported: send application/json (set notifyContentType to application/json)"))
			return
		}
	}
	if err := gated.open(g.maxBodyBytes, r.ContentLength); err != nil {
		writeHTTPError(g.mux, w, r, webhookTooLarge(err))
		return
	}
	body, err := io.ReadAll(gated)
	if err != nil {
		if failure := gated.failure(); failure != nil {
			writeHTTPError(g.mux, w, r, webhookTooLarge(failure))
			return
		}
		writeHTTPError(g.mux, w, r, apiError(codes.InvalidArgument, ReasonMalformedBody, "the body could not be read: "+err.Error()))
		return
	}
	ctx := context.WithValue(r.Context(), rawBodyKey{}, &rawBody{contentType: contentType, body: body})
	ctx = withAuthenticatedWebhook(ctx, g.auth, credential, connectionID)
	r = r.WithContext(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if g.callsDirectly(r, route) {
		g.callWebhook(w, r, route, body)
		return
	}
	g.mux.ServeHTTP(w, r)
}

// callsDirectly tells whether a webhook request can skip the gateway's
// routing (see callWebhook): unless its path is escaped (the gateway then
// matches the raw path), guard would build its metadata early (a header
// that can make that fail) or check a token, and unless the gateway's
// connection and marshaler are the server's own.
func (g *gateway) callsDirectly(r *http.Request, route webhookRoute) bool {
	inbound, _ := runtime.MarshalerForRequest(g.mux, r)
	return r.URL.RawPath == "" && !annotationMayFail(r) && !g.tokens.needsToken(route.method) &&
		g.conn != nil && inbound == runtime.Marshaler(gatewayMarshaler)
}

// callWebhook serves a webhook request as the gateway would, without
// matching its path against every route again, which serveWebhook has
// done: it does what guard and paramsMiddleware do for the route, then
// what the route's generated handler does (request_ and the handler
// registered by RegisterDeliveryReportServiceHandlerClient, in
// gen/ibmail/v1/delivery_report_service.pb.gw.go), with the gateway's own
// functions, the body decoded from the bytes already read. On a one-report
// body the gateway's routing, middlewares and second read of the body were
// a tenth of the CPU.
func (g *gateway) callWebhook(w http.ResponseWriter, r *http.Request, route webhookRoute, body []byte) {
	// paramsMiddleware: the route has no path parameters.
	if err := checkRequestParams(r, nil); err != nil {
		writeHTTPError(g.mux, w, r, err)
		return
	}
	ctx := context.WithValue(r.Context(), gatewayAuthorizedKey{}, route.method) // guard
	// withBodyCopy, holding what its decoder would have read.
	ctx = context.WithValue(ctx, bodyCopyKey{}, &bodyCopy{ReadCloser: r.Body, kept: body[:min(len(body), maxKeptBodyBytes)]})
	r = r.WithContext(ctx)

	// The generated handler.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, outbound := runtime.MarshalerForRequest(g.mux, r)
	annotated, err := runtime.AnnotateContext(ctx, g.mux, r, route.method, runtime.WithHTTPPathPattern(r.URL.Path))
	if err != nil {
		runtime.HTTPError(ctx, g.mux, outbound, w, r, err)
		return
	}
	in, out := route.messages()
	var md runtime.ServerMetadata
	if err = gatewayJSON.decode(body, in); err != nil && !errors.Is(err, io.EOF) {
		err = status.Errorf(codes.InvalidArgument, "%v", err)
	} else {
		err = g.conn.Invoke(annotated, route.method, in, out, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
	}
	annotated = runtime.NewServerMetadataContext(annotated, md)
	if err != nil {
		runtime.HTTPError(annotated, g.mux, outbound, w, r, err)
		return
	}
	runtime.ForwardResponseMessage(annotated, g.mux, outbound, w, r, out, g.mux.GetForwardResponseOptions()...)
}

// webhookTooLarge adds to a too-large answer what Infobip's users can do.
func webhookTooLarge(err error) error {
	if reasonOf(status.Convert(err)) != ReasonBodyTooLarge {
		return err
	}
	return apiError(codes.ResourceExhausted, ReasonBodyTooLarge, status.Convert(err).Message()+"; send fewer reports per call")
}

// handleError is the gateway's one error writer: it maps each error to its
// HTTP status (see httpStatusOf) and keeps webhook bodies that were refused
// as malformed, so that nothing Infobip sent is lost.
func (g *gateway) handleError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if body, ok := r.Context().Value(gatedBodyKey{}).(*gatedBody); ok {
		if failure := body.failure(); failure != nil {
			// The decoder saw a read error; say what it was.
			err = failure
		}
	}
	st := status.Convert(err)
	raw, isWebhook := r.Context().Value(rawBodyKey{}).(*rawBody)
	if st.Code() == codes.InvalidArgument && reasonOf(st) == "" {
		// The gateway's own decoding failed: say so in the API's terms.
		what := "the body is not valid JSON for this request"
		if route, ok := webhookRoutes[r.URL.Path]; ok && isWebhook {
			what = route.body
		}
		err = decodeError(r, what, st)
		st = status.Convert(err)
	}
	err = safeStatus(withReason(err))
	st = status.Convert(err)
	if isWebhook && st.Code() == codes.InvalidArgument {
		if saveErr := g.keepRejected(r.Context(), raw, st.Message()); saveErr != nil {
			// The body was neither stored nor kept: let Infobip retry.
			err = toStatus(saveErr)
		}
	}
	w = errorHeadersWriter{ResponseWriter: w, st: status.Convert(err)}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatusOf(err), Err: err})
}

func (g *gateway) keepRejected(ctx context.Context, raw *rawBody, reason string) error {
	err := g.store.SaveRejectedPayload(context.WithoutCancel(ctx), store.RejectedPayload{
		ReceiveTime: time.Now().UTC(), ContentType: safeText(raw.contentType, 256), Reason: safeText(reason, maxMessageBytes), Body: raw.body,
	})
	if err != nil {
		g.log.Error("keeping a rejected webhook body failed", slog.Any("error", err))
		return err
	}
	g.log.Warn("webhook body rejected and kept", slog.String("reason", reason), slog.Int("bytes", len(raw.body)))
	return nil
}

// errorHeadersWriter sets the headers an error's status implies: a proper
// WWW-Authenticate challenge on 401 (the gateway's default puts the error
// message there), Basic for the webhook and Bearer for callers, and
// Retry-After from a RetryInfo, which HTTP clients know to honour.
type errorHeadersWriter struct {
	http.ResponseWriter
	st *status.Status
}

func (w errorHeadersWriter) WriteHeader(code int) {
	switch {
	case w.st.Code() == codes.Unauthenticated && reasonOf(w.st) == ReasonWebhookUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="ibmail webhook"`)
	case w.st.Code() == codes.Unauthenticated:
		w.Header().Set("WWW-Authenticate", `Bearer realm="ibmail"`)
	}
	for _, d := range w.st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			secs := int64(math.Ceil(ri.GetRetryDelay().AsDuration().Seconds()))
			w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func quoteOrEmpty(s string) string {
	if s == "" {
		return "(none)"
	}
	return `"` + strings.ReplaceAll(s, `"`, `'`) + `"`
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	default:
		return itoa(n) + " bytes"
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
