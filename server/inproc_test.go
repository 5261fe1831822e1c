package server

import (
	"context"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/rules"
)

// seenCall is what an interceptor saw of one in-process call.
type seenCall struct {
	fromGateway   bool
	method        string
	authorization []string
	outgoing      int
}

// newTestInproc is an inprocConn to a real ClassifierService through the
// server's own interceptors and tap, with an interceptor in front that
// records what each call looked like to the server.
func newTestInproc(t *testing.T, seen *[]seenCall) *inprocConn {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	record := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		out, _ := metadata.FromOutgoingContext(ctx)
		method, _ := grpc.Method(ctx)
		*seen = append(*seen, seenCall{fromGateway: fromGateway(ctx), method: method, authorization: md.Get("authorization"), outgoing: out.Len()})
		return handler(ctx, req)
	}
	auth, _ := newTokenAuth(nil, 0, log)
	c := &inprocConn{
		unary: chainUnary(record, logInterceptor(log), recoverInterceptor(log), errorCodeInterceptor),
		tap:   auth.tap,
		calls: make(chan struct{}, 1),
		log:   log,
	}
	c.register(&ibmailv1.ClassifierService_ServiceDesc, NewClassifierService(rules.Static(classifier.Default())))
	return c
}

const classifyMethod = "/ibmail.v1.ClassifierService/ClassifyReport"

func TestInprocConnInvoke(t *testing.T) {
	hard := &ibmailv1.DeliveryReport{MessageId: "m-1", To: "a@example.com",
		Error: &ibmailv1.ReportError{Id: 6012, Name: "EC_HARD_BOUNCE", GroupId: 2, GroupName: "BOUNCED"}}
	want, err := NewClassifierService(rules.Static(classifier.Default())).ClassifyReport(context.Background(), &ibmailv1.ClassifyReportRequest{Report: proto.Clone(hard).(*ibmailv1.DeliveryReport)})
	if err != nil {
		t.Fatal(err)
	}
	checked := func(method string) context.Context {
		ctx := context.WithValue(context.Background(), gatewayAuthorizedKey{}, method)
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer some-token")
	}
	tests := []struct {
		name     string
		ctx      context.Context
		method   string
		req      *ibmailv1.ClassifyReportRequest
		full     bool // every call slot taken
		closed   bool
		wantCode codes.Code
		// wantSeen: the call reached the interceptors.
		wantSeen bool
	}{
		{name: "checked call", ctx: checked(classifyMethod), method: classifyMethod, req: &ibmailv1.ClassifyReportRequest{Report: hard}, wantSeen: true},
		{name: "service error", ctx: checked(classifyMethod), method: classifyMethod, req: &ibmailv1.ClassifyReportRequest{}, wantCode: codes.InvalidArgument, wantSeen: true},
		{name: "no token check", ctx: context.Background(), method: classifyMethod, req: &ibmailv1.ClassifyReportRequest{Report: hard}, wantCode: codes.Internal},
		{name: "checked for another method", ctx: checked("/ibmail.v1.ClassifierService/BatchClassifyReports"), method: classifyMethod,
			req: &ibmailv1.ClassifyReportRequest{Report: hard}, wantCode: codes.Internal},
		{name: "unknown method", ctx: checked("/ibmail.v1.ClassifierService/Nope"), method: "/ibmail.v1.ClassifierService/Nope",
			req: &ibmailv1.ClassifyReportRequest{Report: hard}, wantCode: codes.Unimplemented},
		{name: "metadata gRPC cannot send", ctx: metadata.AppendToOutgoingContext(checked(classifyMethod), "x-note", "caf\xc3\xa9"), method: classifyMethod,
			req: &ibmailv1.ClassifyReportRequest{Report: hard}, wantCode: codes.Internal},
		{name: "after close", ctx: checked(classifyMethod), method: classifyMethod, req: &ibmailv1.ClassifyReportRequest{Report: hard}, closed: true, wantCode: codes.Canceled},
		{name: "no free call slot, caller gone", ctx: canceled(checked(classifyMethod)), method: classifyMethod,
			req: &ibmailv1.ClassifyReportRequest{Report: hard}, full: true, wantCode: codes.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []seenCall
			c := newTestInproc(t, &seen)
			if tt.full {
				c.calls <- struct{}{}
			}
			if tt.closed {
				c.Close()
			}
			var header, trailer metadata.MD
			got := &ibmailv1.ClassifyReportResponse{}
			err := c.Invoke(tt.ctx, tt.method, tt.req, got, grpc.Header(&header), grpc.Trailer(&trailer))
			if code := status.Code(err); code != tt.wantCode {
				t.Fatalf("Invoke: %v, want code %v", err, tt.wantCode)
			}
			if tt.wantSeen != (len(seen) > 0) || len(seen) > 1 {
				t.Fatalf("interceptors ran %d times, want %v", len(seen), tt.wantSeen)
			}
			if tt.wantSeen {
				wantCall := seenCall{fromGateway: true, method: tt.method, authorization: []string{"Bearer some-token"}}
				if s := seen[0]; s.fromGateway != wantCall.fromGateway || s.method != wantCall.method || len(s.authorization) != 1 ||
					s.authorization[0] != wantCall.authorization[0] || s.outgoing != 0 {
					t.Errorf("the server saw %+v, want %+v", s, wantCall)
				}
			}
			if tt.wantCode != codes.OK {
				if len(header) != 0 {
					t.Errorf("header of a failed call = %v, want none (trailers only)", header)
				}
				return
			}
			if !proto.Equal(got, want) {
				t.Errorf("answer %v, want %v", got, want)
			}
			if v := header.Get("content-type"); len(v) != 1 || v[0] != "application/grpc" {
				t.Errorf("header = %v, want content-type application/grpc as over gRPC", header)
			}
		})
	}
}

func canceled(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	return ctx
}

// TestInprocConnHeaders: what a handler sets with grpc.SetHeader,
// SendHeader and SetTrailer reaches the gateway's call options.
func TestInprocConnHeaders(t *testing.T) {
	tests := []struct {
		name        string
		fail        bool
		send        bool // SendHeader rather than SetHeader
		wantHeader  []string
		wantTrailer []string
	}{
		{name: "set, ok", wantHeader: []string{"1"}, wantTrailer: []string{"t"}},
		{name: "set, failed", fail: true, wantTrailer: []string{"t"}},
		{name: "sent, failed", fail: true, send: true, wantHeader: []string{"1"}, wantTrailer: []string{"t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := slog.New(slog.DiscardHandler)
			c := &inprocConn{calls: make(chan struct{}, 1), log: log,
				unary: chainUnary(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
					set := grpc.SetHeader
					if tt.send {
						set = grpc.SendHeader
					}
					if err := set(ctx, metadata.Pairs("x-h", "1")); err != nil {
						return nil, err
					}
					if err := grpc.SetTrailer(ctx, metadata.Pairs("x-t", "t")); err != nil {
						return nil, err
					}
					if tt.fail {
						return nil, status.Error(codes.NotFound, "no")
					}
					return handler(ctx, req)
				})}
			c.register(&ibmailv1.ClassifierService_ServiceDesc, NewClassifierService(rules.Static(classifier.Default())))
			ctx := context.WithValue(context.Background(), gatewayAuthorizedKey{}, classifyMethod)
			var header, trailer metadata.MD
			err := c.Invoke(ctx, classifyMethod, &ibmailv1.ClassifyReportRequest{Report: &ibmailv1.DeliveryReport{}},
				&ibmailv1.ClassifyReportResponse{}, grpc.Header(&header), grpc.Trailer(&trailer))
			if (err != nil) != tt.fail {
				t.Fatalf("Invoke: %v", err)
			}
			if got := header.Get("x-h"); !equalStrings(got, tt.wantHeader) {
				t.Errorf("header x-h = %q, want %q", got, tt.wantHeader)
			}
			if got := trailer.Get("x-t"); !equalStrings(got, tt.wantTrailer) {
				t.Errorf("trailer x-t = %q, want %q", got, tt.wantTrailer)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMoveMessage: the moved message equals its source, lists, maps,
// oneofs and unknown fields included, and shares the source's memory
// rather than copying it.
func TestMoveMessage(t *testing.T) {
	st, err := structpb.NewStruct(map[string]any{"a": 1, "b": []any{"x", true}, "c": map[string]any{"d": nil}})
	if err != nil {
		t.Fatal(err)
	}
	withUnknown := &ibmailv1.IngestDeliveryReportsRequest{Results: []*ibmailv1.DeliveryReport{{MessageId: "m-1"}, {MessageId: "m-2", To: "b@example.com"}}}
	withUnknown.ProtoReflect().SetUnknown([]byte{0xf8, 0x3f, 0x01}) // field 1023, varint 1
	tests := []struct {
		name string
		src  proto.Message
	}{
		{name: "lists", src: withUnknown},
		{name: "maps and oneofs", src: st},
		{name: "empty", src: &ibmailv1.ClassifyReportResponse{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := proto.Clone(tt.src)
			dst := tt.src.ProtoReflect().New().Interface()
			moveMessage(dst, tt.src)
			if !proto.Equal(dst, want) {
				t.Errorf("moved %v, want %v", dst, want)
			}
		})
	}
	dst := &ibmailv1.IngestDeliveryReportsRequest{}
	moveMessage(dst, withUnknown)
	if dst.Results[0] != withUnknown.Results[0] {
		t.Error("the moved list was copied, not shared")
	}
}

// TestInprocConnStreams: no streaming route goes in process.
func TestInprocConnStreams(t *testing.T) {
	var seen []seenCall
	c := newTestInproc(t, &seen)
	if _, err := c.NewStream(context.Background(), &grpc.StreamDesc{ServerStreams: true}, "/ibmail.v1.EventService/WatchEvents"); status.Code(err) != codes.Unimplemented {
		t.Fatalf("NewStream: %v, want Unimplemented", err)
	}
}
