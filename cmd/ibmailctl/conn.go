package main

import (
	"context"
	"crypto/tls"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// bearer puts the token on every call as `authorization: Bearer <token>`.
type bearer struct {
	token  string
	secure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials. It is
// false over plaintext only because plaintext is chosen for loopback (or
// asked for explicitly), where the token does not cross a network.
func (b bearer) RequireTransportSecurity() bool { return b.secure }

// useTLS decides the transport: --tls or --plaintext when given, else
// plaintext for a loopback address and TLS for anything else, so a token is
// not sent in the clear by accident.
func useTLS(g *globals) bool {
	if g.tls || g.plaintext {
		return g.tls
	}
	return !isLoopback(g.addr)
}

// isLoopback reports whether addr (host:port) names this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dial makes a client connection. It does not connect yet: grpc connects on
// the first call, and a failure to connect surfaces there as Unavailable.
func dial(g *globals) (*grpc.ClientConn, error) {
	secure := useTLS(g)
	opts := []grpc.DialOption{}
	if secure {
		// nil RootCAs means the system roots.
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if g.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: g.token, secure: secure}))
	}
	return grpc.NewClient(g.addr, opts...)
}
