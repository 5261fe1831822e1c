package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// inprocConn is the gateway's connection to the services: it calls a
// method's handler directly, in the gateway's goroutine, rather than
// serialising the request to protobuf, framing it over in-memory HTTP/2
// and decoding it again (on a one-report webhook body that hop was a third
// of the CPU). What a call passes on its way is what the gRPC server does
// for a unary call, in its order, with the server's own pieces: the tap
// (auth.tap, which knows the gateway's calls by their peer), the stats
// handler (otelgrpc: one server span and its metrics per call), and the one
// unary interceptor chain the grpc.Server runs (log, recover, error codes).
// Only unary methods are served: the gateway serves no streaming route
// (WatchEvents is gRPC only), and a stream over it is refused as
// Unimplemented, which is what a REST route for one would need to change.
type inprocConn struct {
	methods map[string]inprocMethod
	unary   grpc.UnaryServerInterceptor
	stats   stats.Handler
	tap     tap.ServerInHandle
	// calls bounds the calls in flight, as the gRPC connection's stream
	// quota (GRPCMaxConcurrentStreams) bounded the gateway's: more wait.
	calls  chan struct{}
	closed atomic.Bool
	log    *slog.Logger
}

type inprocMethod struct {
	srv     any
	handler grpc.MethodHandler
}

var _ grpc.ClientConnInterface = (*inprocConn)(nil)

// gatewayPeer is the peer of every gateway call: fromGateway holds for it.
var gatewayPeer = &peer.Peer{Addr: gatewayAddr{}, LocalAddr: gatewayAddr{}}

// inprocHeader is the header a unary call's answer carries over gRPC, which
// the gateway passes on as Grpc-Metadata-Content-Type: REST answers keep it.
var inprocHeader = metadata.MD{"content-type": {"application/grpc"}}

// errConnClosing is what a call after Close gets, as on a closed
// grpc.ClientConn.
var errConnClosing = status.Error(codes.Canceled, "grpc: the client connection is closing")

// serviceRegistrar registers each service on the grpc.Server and records it
// for the in-process connection: grpc.Server.GetServiceInfo gives names
// only, not handlers.
type serviceRegistrar struct {
	server *grpc.Server
	inproc *inprocConn
}

func (r serviceRegistrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	r.server.RegisterService(desc, impl)
	r.inproc.register(desc, impl)
}

func (c *inprocConn) register(desc *grpc.ServiceDesc, impl any) {
	if c.methods == nil {
		c.methods = map[string]inprocMethod{}
	}
	for _, m := range desc.Methods {
		c.methods["/"+desc.ServiceName+"/"+m.MethodName] = inprocMethod{srv: impl, handler: m.Handler}
	}
}

// Close makes every later call fail, as closing the connection did.
func (c *inprocConn) Close() { c.closed.Store(true) }

// Invoke runs a unary call. The gateway hands over its request and takes
// the answer's fields (see moveMessage): the gateway's request is a local
// of its generated handler, read by nothing once Invoke returns, and the
// services build a fresh answer per call and keep no reference to it nor
// to their request once they returned, so no copy is needed either way.
func (c *inprocConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if c.closed.Load() {
		return errConnClosing
	}
	// The gateway checked the caller's token for one RPC (guard); the
	// server checks the gateway's calls no more, so a call for any other
	// is a bug, refused.
	if authorized, _ := ctx.Value(gatewayAuthorizedKey{}).(string); authorized != method {
		c.log.Error("gateway call without its token check", slog.String("method", method), slog.String("checked", authorized))
		return apiError(codes.Internal, ReasonInternal, "internal error")
	}
	in, ok := args.(proto.Message)
	out, ok2 := reply.(proto.Message)
	if !ok || !ok2 {
		return status.Errorf(codes.Internal, "inproc: %T or %T is not a proto message", args, reply)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	// gRPC refuses to send what is not valid metadata; so does this.
	if err := validateMetadata(md); err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	select {
	case c.calls <- struct{}{}:
		defer func() { <-c.calls }()
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}

	// From here on, what the server does with a call that arrived.
	m, ok := c.methods[method]
	if !ok {
		return unknownMethod(method)
	}
	stream := &inprocStream{method: method}
	ctx = peer.NewContext(ctx, gatewayPeer)
	ctx = metadata.NewIncomingContext(ctx, md)
	// The gateway's outgoing metadata (its caller's token among it) must not
	// leave with a call the service might make.
	ctx = metadata.NewOutgoingContext(ctx, nil)
	ctx = grpc.NewContextWithServerTransportStream(ctx, stream)
	if c.tap != nil {
		var err error
		if ctx, err = c.tap(ctx, &tap.Info{FullMethodName: method, Header: md}); err != nil {
			return status.Convert(err).Err()
		}
	}
	var begin time.Time
	// Without telemetry, otelgrpc's handler would only make a span that
	// records nothing (see telemetryOn).
	sh := c.stats
	if !telemetryOn() {
		sh = nil
	}
	if sh != nil {
		ctx = sh.TagRPC(ctx, &stats.RPCTagInfo{FullMethodName: method})
		begin = time.Now()
		sh.HandleRPC(ctx, &stats.Begin{BeginTime: begin})
	}
	resp, err := m.handler(m.srv, ctx, func(dst any) error {
		moveMessage(dst.(proto.Message), in)
		return nil
	}, c.unary)
	if err != nil {
		if _, isStatus := status.FromError(err); !isStatus {
			err = status.FromContextError(err).Err()
		}
	}
	if sh != nil {
		sh.HandleRPC(ctx, &stats.End{BeginTime: begin, EndTime: time.Now(), Error: err})
	}
	header, trailer := stream.result(err == nil)
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = trailer
		}
	}
	if err != nil {
		return err
	}
	if msg, ok := resp.(proto.Message); ok && msg != nil && msg.ProtoReflect().IsValid() {
		moveMessage(out, msg)
	} else {
		// A nil answer reaches a gRPC client as an empty message.
		proto.Reset(out)
	}
	return nil
}

// NewStream refuses: the gateway serves no streaming route.
func (c *inprocConn) NewStream(_ context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Errorf(codes.Unimplemented, "inproc: streaming method %s is not served in process", method)
}

// unknownMethod is the gRPC server's answer to a method it does not serve.
func unknownMethod(method string) error {
	service, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	return status.Errorf(codes.Unimplemented, "unknown method %v for service %v", name, service)
}

// moveMessage makes dst, an empty message of src's type, hold src's fields:
// it sets each populated field of src on dst, so lists, maps, messages and
// bytes are shared, not copied. src must not be used afterwards. A message
// of another type (none the generated code makes) is merged instead.
func moveMessage(dst, src proto.Message) {
	proto.Reset(dst)
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	if d.Descriptor() != s.Descriptor() {
		proto.Merge(dst, src)
		return
	}
	s.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		d.Set(fd, v)
		return true
	})
	if u := s.GetUnknown(); len(u) > 0 {
		d.SetUnknown(u)
	}
}

// validateMetadata applies gRPC's rules for what a call may send: keys of
// [0-9a-z-_.], and printable ASCII values unless the key ends in -bin.
func validateMetadata(md metadata.MD) error {
	for k, vals := range md {
		if k == "" {
			return fmt.Errorf("there is an empty key in the header")
		}
		if k[0] == ':' {
			continue
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '.' && c != '-' && c != '_' {
				return fmt.Errorf("header key %q contains illegal characters not in [0-9a-z-_.]", k)
			}
		}
		if strings.HasSuffix(k, "-bin") {
			continue
		}
		for _, v := range vals {
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7e {
					return fmt.Errorf("header key %q contains value with non-printable ASCII characters", k)
				}
			}
		}
	}
	return nil
}

// inprocStream is the server side of an in-process call as a handler sees
// it (grpc.Method, grpc.SetHeader, grpc.SetTrailer).
type inprocStream struct {
	method string
	mu     sync.Mutex
	header metadata.MD
	sent   bool
	trail  metadata.MD
}

func (s *inprocStream) Method() string { return s.method }

func (s *inprocStream) SetHeader(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent {
		return status.Error(codes.Internal, "transport: the stream is done or WriteHeader was already called")
	}
	s.header = metadata.Join(s.header, md)
	return nil
}

func (s *inprocStream) SendHeader(md metadata.MD) error {
	if err := s.SetHeader(md); err != nil {
		return err
	}
	s.mu.Lock()
	s.sent = true
	s.mu.Unlock()
	return nil
}

func (s *inprocStream) SetTrailer(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trail = metadata.Join(s.trail, md)
	return nil
}

// result is the header and trailer the client would have received: a
// failed call whose handler sent no header (SendHeader) is answered with
// trailers only, so its header is empty.
func (s *inprocStream) result(ok bool) (header, trailer metadata.MD) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sentEarly := s.sent
	s.sent = true
	if ok || sentEarly {
		header = metadata.Join(inprocHeader, s.header)
	}
	return header, s.trail
}

// chainUnary makes one interceptor of several, the first outermost, as
// grpc.ChainUnaryInterceptor does: the grpc.Server and inprocConn share the
// one chain it returns.
func chainUnary(interceptors ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return interceptors[0](ctx, req, info, chainedHandler(interceptors, 0, info, handler))
	}
}

func chainedHandler(interceptors []grpc.UnaryServerInterceptor, cur int, info *grpc.UnaryServerInfo, final grpc.UnaryHandler) grpc.UnaryHandler {
	if cur == len(interceptors)-1 {
		return final
	}
	return func(ctx context.Context, req any) (any, error) {
		return interceptors[cur+1](ctx, req, info, chainedHandler(interceptors, cur+1, info, final))
	}
}
