// Command ibmailctl is a command-line client for the ibmail gRPC API: it
// classifies Infobip delivery and tracking reports, starts sends and follows
// them, reads profiles' activity lists and the stored tracking reports,
// exports segmentations as CSV, and shows sending domains and lifts their
// blocks.
//
// Run "ibmailctl --help" for the subcommands and the exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Ctrl-C cancels the RPC in flight rather than killing the process, so
	// the exit code still says what happened.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
