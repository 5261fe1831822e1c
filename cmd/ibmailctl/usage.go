package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// exitCodesHelp documents the exit codes; scripts rely on them.
const exitCodesHelp = `Exit codes:
  0  success
  1  the server refused or failed the call (the gRPC code and message go to stderr)
  2  usage error: bad flags or arguments, or an unreadable or malformed input file
  3  could not connect, or the deadline passed (Unavailable, DeadlineExceeded)
`

// printUsage writes the tool's help.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: ibmailctl [global flags] <subcommand> [flags] [args]

ibmailctl calls the ibmail gRPC API: it classifies Infobip delivery and
tracking reports, sends email to profiles, follows sends, reads events,
segmentations and tracking reports, shows and unblocks sending domains, and
manages connections, sender accounts and the mapping rules.

Subcommands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.short)
	}
	fmt.Fprint(w, "\nGlobal flags (before or after the subcommand):\n")
	printFlags(w, globalFlagSet(), func(string) bool { return true })
	fmt.Fprint(w, "\n"+exitCodesHelp)
	fmt.Fprint(w, `
Example:
  ibmailctl --addr ibmail.internal:9090 --tls events customer-42 --limit 10

Run 'ibmailctl <subcommand> --help' for a subcommand's flags.
`)
}

// printCommandUsage writes one subcommand's help.
func printCommandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: ibmailctl %s %s\n\n%s\n", c.name, c.args, c.summary)
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.flags(fs)
	if hasFlags(fs) {
		fmt.Fprint(w, "\nFlags:\n")
		printFlags(w, fs, func(name string) bool { return !globalNames[name] })
	}
	fmt.Fprintf(w, "\nExample:\n%s\n", indent(c.example))
	fmt.Fprint(w, "\nGlobal flags and exit codes: ibmailctl --help\n")
}

// globalFlagSet is a flag set with only the global flags, for help.
func globalFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("ibmailctl", flag.ContinueOnError)
	g := &globals{addr: "127.0.0.1:9090", timeout: defaultTimeout, output: "text"}
	g.register(fs)
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// printFlags writes the flags that keep selects, in the flag package's
// layout but with "--" since that is how the examples spell them.
func printFlags(w io.Writer, fs *flag.FlagSet, keep func(string) bool) {
	fs.VisitAll(func(f *flag.Flag) {
		if !keep(f.Name) {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n        %s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}
