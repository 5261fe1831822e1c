package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/ibmail/ibmail/buildinfo"
	"github.com/ibmail/ibmail/cmd/internal/envflag"
)

// getenv reads the environment; a variable so that the defaults it feeds
// are plain to see in one place.
var getenv = os.Getenv

// defaultTimeout bounds a command unless --timeout says otherwise.
const defaultTimeout = 30 * time.Second

// globals are the flags every subcommand shares.
type globals struct {
	addr      string
	token     string
	timeout   time.Duration
	plaintext bool
	tls       bool
	output    string
}

// register adds the global flags to fs, with the current values as
// defaults, so that they may come before or after the subcommand.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.addr, "addr", g.addr, "server `host:port` (env IBMAIL_ADDR)")
	fs.StringVar(&g.token, "token", g.token, "bearer `token` sent as authorization metadata (env IBMAIL_TOKEN)")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "deadline for the whole command, 0 for none")
	fs.BoolVar(&g.plaintext, "plaintext", g.plaintext, "no TLS (the default for a loopback address)")
	fs.BoolVar(&g.tls, "tls", g.tls, "TLS with the system roots (the default for other addresses)")
	fs.StringVar(&g.output, "output", g.output, "output `format`: text or json")
}

// globalNames are the names register defines, to keep them out of the
// subcommands' own flag lists.
var globalNames = map[string]bool{"addr": true, "token": true, "timeout": true, "plaintext": true, "tls": true, "output": true}

// check validates the global flags once all are parsed.
func (g *globals) check() error {
	if g.plaintext && g.tls {
		return usagef("--plaintext and --tls exclude each other")
	}
	if g.output != "text" && g.output != "json" {
		return usagef("--output must be text or json, not %q", g.output)
	}
	if g.addr == "" {
		return usagef("--addr is empty")
	}
	if err := envflag.HostPort(g.addr); err != nil {
		return usagef("--addr (or env IBMAIL_ADDR) %q: %v", g.addr, err)
	}
	if g.timeout < 0 {
		return usagef("--timeout %v: want 0 (none) or more", g.timeout)
	}
	return nil
}

// env is what a subcommand runs with.
type env struct {
	g      *globals
	conn   *grpc.ClientConn
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// command is one subcommand.
type command struct {
	name    string
	args    string // the usage line after the name
	short   string // a few words, for the list in ibmailctl --help
	summary string // one sentence, for the subcommand's --help
	example string
	// flags defines the subcommand's own flags on fs and returns the function
	// that runs it with the positional arguments.
	flags func(fs *flag.FlagSet) func(ctx context.Context, e *env, args []string) error
}

// commands lists the subcommands in the order --help shows them.
var commands = []*command{classifyCmd, trackingCmd, sendCmd, sendStatusCmd, eventsCmd, segmentCmd, domainsCmd, unblockCmd, rulesCmd, reclassifyCmd, operationsCmd, connectionsCmd, sendersCmd, suppressionsCmd}

// run is the whole program: it parses args, runs one subcommand and returns
// the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{addr: "127.0.0.1:9090", timeout: defaultTimeout, output: "text"}
	if v := getenv("IBMAIL_ADDR"); v != "" {
		g.addr = v
	}
	g.token = getenv("IBMAIL_TOKEN")

	top := flag.NewFlagSet("ibmailctl", flag.ContinueOnError)
	top.SetOutput(io.Discard) // we print usage ourselves, to stderr or stdout
	g.register(top)
	showVersion := top.Bool("version", false, "print the version and exit")
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "ibmailctl: %v\n\n", err)
		printUsage(stderr)
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintln(stdout, "ibmailctl", buildinfo.Read())
		return exitOK
	}
	rest := top.Args()
	if len(rest) == 0 {
		fmt.Fprintln(stderr, "ibmailctl: no subcommand")
		fmt.Fprintln(stderr)
		printUsage(stderr)
		return exitUsage
	}
	if rest[0] == "help" {
		switch {
		case len(rest) > 2:
			fmt.Fprintf(stderr, "ibmailctl help: unexpected argument %q: help takes at most one subcommand\n", rest[2])
			return exitUsage
		case len(rest) == 2:
			c := lookup(rest[1])
			if c == nil {
				fmt.Fprintf(stderr, "ibmailctl help: unknown subcommand %q\n\n", rest[1])
				printUsage(stderr)
				return exitUsage
			}
			printCommandUsage(stdout, c)
			return exitOK
		}
		printUsage(stdout)
		return exitOK
	}
	c := lookup(rest[0])
	if c == nil {
		fmt.Fprintf(stderr, "ibmailctl: unknown subcommand %q\n\n", rest[0])
		printUsage(stderr)
		return exitUsage
	}

	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	do := c.flags(fs)
	g.register(fs)
	pos, err := parseInterleaved(fs, rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandUsage(stdout, c)
			return exitOK
		}
		fmt.Fprintf(stderr, "ibmailctl %s: %v\n\n", c.name, err)
		printCommandUsage(stderr, c)
		return exitUsage
	}
	if err := g.check(); err != nil {
		return report(stderr, err)
	}

	conn, err := dial(g)
	if err != nil {
		return report(stderr, usagef("%v", err))
	}
	defer conn.Close()
	if g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	e := &env{g: g, conn: conn, stdin: stdin, stdout: stdout, stderr: stderr}
	err = do(ctx, e, pos)
	code := report(stderr, err)
	if unreachable(err) {
		transport := "plaintext"
		if useTLS(g) {
			transport = "TLS"
		}
		fmt.Fprintf(stderr, "ibmailctl: no ibmail server answered at %s (%s): start ibmaild there, or give its gRPC address with --addr HOST:PORT (or IBMAIL_ADDR)\n", g.addr, transport)
	}
	if code == exitUsage {
		fmt.Fprintf(stderr, "run 'ibmailctl %s --help' for usage\n", c.name)
	}
	return code
}

// lookup finds a subcommand by name.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments (the flag package alone stops at the first
// positional), and returns the positionals. "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at a positional or after consuming "--"; after
		// "--" everything is positional.
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// stringList is a flag that may be given more than once.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
