package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
)

// The defaults of TransportLimits.
const (
	// DefaultMaxAPIBodyBytes bounds the bodies of every REST route but the
	// webhook. A CreateSend of 100,000 recipients, each with a 36-character
	// profile id, a 40-character address and five placeholders, and a
	// 1 MiB HTML body, is about 32 MiB of JSON (TestMaxAPIBodyFitsLargestSend
	// measures it): twice that leaves room.
	DefaultMaxAPIBodyBytes = 64 << 20
	// DefaultReadHeaderTimeout bounds the wait for a request's headers and
	// for the first bytes of its body.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultBodyMinRate is the slowest a body may arrive, in bytes per
	// second, once DefaultReadHeaderTimeout has passed: Infobip and API
	// clients post from data centres, far faster.
	DefaultBodyMinRate = 16 << 10
	// DefaultBodyTimeout is the longest any body may take.
	DefaultBodyTimeout = 5 * time.Minute
	// DefaultIdleTimeout closes keep-alive connections (and gRPC
	// connections without calls) left idle this long.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxConnections bounds the open connections of each listener.
	DefaultMaxConnections = 1024
	// DefaultMaxHeaderBytes bounds a REST request's line and headers, read
	// before any check can refuse them (net/http's own default is 1 MiB).
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultGRPCMaxConcurrentStreams bounds the calls in flight on one
	// gRPC connection.
	DefaultGRPCMaxConcurrentStreams = 100
)

// TransportLimits bound what a client may make the listeners hold, before
// and after its call is authenticated: header sizes, how long headers and
// bodies may take, idle connections, and how many connections and calls
// are open at once. Zero fields take the defaults above.
type TransportLimits struct {
	// ReadHeaderTimeout bounds the wait for a request's headers; a body
	// gets as long again before BodyMinRate applies.
	ReadHeaderTimeout time.Duration
	// BodyMinRate is the slowest rate, in bytes per second, at which a body
	// must keep arriving: a body of n bytes may take ReadHeaderTimeout plus
	// n/BodyMinRate seconds, and never more than BodyTimeout.
	BodyMinRate int64
	// BodyTimeout is the longest a body may take, however fast it comes.
	BodyTimeout time.Duration
	// IdleTimeout closes connections idle between requests (REST) or
	// without calls (gRPC).
	IdleTimeout time.Duration
	// MaxConnections bounds the open connections of each listener; more
	// wait in the listen queue until one closes.
	MaxConnections int
	// MaxHeaderBytes bounds a REST request's line and headers.
	MaxHeaderBytes int
	// GRPCMaxConcurrentStreams bounds the calls in flight per gRPC
	// connection.
	GRPCMaxConcurrentStreams uint32
}

func (l TransportLimits) withDefaults() TransportLimits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.BodyMinRate <= 0 {
		l.BodyMinRate = DefaultBodyMinRate
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.GRPCMaxConcurrentStreams == 0 {
		l.GRPCMaxConcurrentStreams = DefaultGRPCMaxConcurrentStreams
	}
	return l
}

// errBodyTooSlow is what reading a body gives once it fell behind its
// deadline.
var errBodyTooSlow = errors.New("the body arrived too slowly")

// errBodyTimeout answers a call whose body fell behind (HTTP 408).
var errBodyTimeout = apiError(codes.DeadlineExceeded, ReasonBodyTimeout,
	"the body arrived too slowly: send it at once, without pauses")

// bodyDeadlines bounds how long every request body may take, by read
// deadlines on the connection: a body starts with limits.ReadHeaderTimeout
// and earns 1/BodyMinRate seconds more with every byte, up to
// BodyTimeout in all. A large webhook body that keeps coming arrives; a
// client trickling bytes is cut off once it falls behind. It must wrap the
// handler as it comes from net/http, whose connection the deadlines set.
func bodyDeadlines(limits TransportLimits, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			// No body: nothing to bound, and a deadline now would also end
			// net/http's wait for the client to hang up.
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		b := &deadlineBody{src: r.Body, rc: http.NewResponseController(w), limits: limits, start: start, declared: r.ContentLength}
		b.extend()
		r.Body = b
		next.ServeHTTP(w, r)
	})
}

// deadlineBody moves the connection's read deadline as its bytes arrive.
type deadlineBody struct {
	src      io.ReadCloser
	rc       *http.ResponseController
	limits   TransportLimits
	start    time.Time
	declared int64
	read     int64
	done     bool
}

// extend sets the read deadline the bytes read so far have earned.
func (b *deadlineBody) extend() {
	earned := b.limits.ReadHeaderTimeout + time.Duration(float64(b.read)/float64(b.limits.BodyMinRate)*float64(time.Second))
	b.rc.SetReadDeadline(b.start.Add(min(earned, b.limits.BodyTimeout))) //nolint:errcheck // unsupported only for writers that are not net/http's
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	b.read += int64(n)
	switch {
	case err == io.EOF || (b.declared >= 0 && b.read >= b.declared):
		if !b.done {
			// The whole body is in: net/http now waits for the client
			// to hang up, which a deadline must not cut short.
			b.done = true
			b.rc.SetReadDeadline(time.Time{}) //nolint:errcheck // as in extend
		}
	case err != nil:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = errBodyTooSlow
		}
	case n > 0:
		b.extend()
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.src.Close() }

// gatewayAddr is the peer address of the gateway's calls (see inprocConn),
// which guard authenticated before their bodies were read; no network
// connection can have it.
type gatewayAddr struct{}

func (gatewayAddr) Network() string { return "ibmail-gateway" }
func (gatewayAddr) String() string  { return "ibmail-gateway" }

// fromGateway tells whether a call came from the gateway's own in-process
// connection.
func fromGateway(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	_, gw := p.Addr.(gatewayAddr)
	return gw
}
