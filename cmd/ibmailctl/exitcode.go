package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes. Scripts branch on them, so they are part of the interface:
// change them only with the help text and docs/ibmailctl.md.
const (
	exitOK          = 0 // success
	exitServer      = 1 // the server refused or failed the call
	exitUsage       = 2 // bad flags, arguments or input files
	exitUnreachable = 3 // could not connect, or the deadline passed
)

// usageError is a mistake in the invocation or its input files, found
// before or without asking the server.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef makes a usageError.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// unreachable reports whether err says the connection itself failed (no
// listener, no route, a name that does not resolve, a TLS mismatch), as
// opposed to a server that answered UNAVAILABLE, which sends an ErrorInfo.
func unreachable(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return false
	}
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.ErrorInfo); ok {
			return false
		}
	}
	return true
}

// report prints err to stderr and returns the exit code it stands for.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "ibmailctl: %s\n", ue.msg)
		return exitUsage
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The deadline can pass between calls, as while --wait sleeps.
		fmt.Fprintf(stderr, "ibmailctl: %s: %v\n", codes.DeadlineExceeded, err)
		return exitUnreachable
	}
	st, ok := status.FromError(err)
	if !ok {
		// Not a gRPC status: a local failure such as a write error.
		fmt.Fprintf(stderr, "ibmailctl: %v\n", err)
		return exitServer
	}
	fmt.Fprintf(stderr, "ibmailctl: %s: %s\n", st.Code(), st.Message())
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		return exitUnreachable
	default:
		return exitServer
	}
}
