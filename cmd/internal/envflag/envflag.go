// Package envflag binds command-line flags to environment variables and
// parses both strictly: a value that does not parse, or lies outside the
// flag's range, stops the program with a message naming the flag or the
// variable and what it expects, instead of falling back to the default.
//
// Every binary of the project defines its flags through a Set:
//
//	s := envflag.New(fs, nil)
//	s.Int(&cfg.sendRate, "send-rate", "IBMAIL_SEND_RATE", 100, "usage", envflag.Between(1, 100_000))
//	if err := s.Parse(os.Args[1:]); err != nil { ... exit 2 ... }
//
// The command line wins over the environment, but a bad environment value
// is refused even when a flag overrides it: it is a mistake either way. An
// environment variable set to the empty string counts as unset.
package envflag

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Set defines flags on a flag.FlagSet, each optionally read from an
// environment variable first, and collects what did not parse.
type Set struct {
	fs      *flag.FlagSet
	lookup  func(string) (string, bool)
	errs    []error
	envOf   map[string]string // flag name -> its environment variable
	fromEnv map[string]bool   // flags whose value came from the environment
	inEnv   bool              // a value is being set from the environment
}

// New returns a Set defining flags on fs. lookup reads the environment;
// nil means os.LookupEnv.
func New(fs *flag.FlagSet, lookup func(string) (string, bool)) *Set {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &Set{fs: fs, lookup: lookup, envOf: map[string]string{}, fromEnv: map[string]bool{}}
}

// FlagSet is the underlying flag set.
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

// Var defines the flag name on v, whose value at the call is the default,
// and then sets it from the environment variable env if that is set (env
// may be empty: no variable). The usage gets "(env NAME)" appended.
func (s *Set) Var(v flag.Value, name, env, usage string) {
	if env != "" {
		usage += " (env " + env + ")"
		s.envOf[name] = env
	}
	s.fs.Var(v, name, usage)
	if env == "" {
		return
	}
	raw, ok := s.lookup(env)
	if !ok || raw == "" {
		return
	}
	s.inEnv = true
	err := v.Set(raw)
	s.inEnv = false
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("%s=%q: %w", env, raw, err))
		return
	}
	s.fromEnv[name] = true
}

// String defines a string flag.
func (s *Set) String(p *string, name, env, def, usage string, checks ...func(string) error) {
	*p = def
	s.Var(&Value[string]{P: p, Parse: func(v string) (string, error) { return v, nil }, Checks: checks}, name, env, usage)
}

// Secret defines a string flag whose value is never shown: not in errors,
// not as the default in the help.
func (s *Set) Secret(p *string, name, env, usage string, checks ...func(string) error) {
	v := &Value[string]{P: p, Parse: func(v string) (string, error) { return v, nil }, Checks: checks, Hide: true}
	s.Var(&secretValue{v: v, set: s, name: name, env: env}, name, env, usage)
}

// secretValue records a bad value's problem itself, naming the flag or the
// variable but not the value, since the flag package would quote it.
type secretValue struct {
	v         *Value[string]
	set       *Set
	name, env string
}

func (sv *secretValue) String() string { return "" }

func (sv *secretValue) Set(raw string) error {
	if err := sv.v.Set(raw); err != nil {
		src := "--" + sv.name
		if sv.set.inEnv {
			src = sv.env
		}
		sv.set.errs = append(sv.set.errs, fmt.Errorf("%s (value not shown): %w", src, err))
	}
	return nil
}

// Int defines an int flag.
func (s *Set) Int(p *int, name, env string, def int, usage string, checks ...func(int) error) {
	*p = def
	s.Var(&Value[int]{P: p, Parse: ParseInt, Checks: checks}, name, env, usage)
}

// Int64 defines an int64 flag.
func (s *Set) Int64(p *int64, name, env string, def int64, usage string, checks ...func(int64) error) {
	*p = def
	s.Var(&Value[int64]{P: p, Parse: ParseInt64, Checks: checks}, name, env, usage)
}

// Float64 defines a float64 flag.
func (s *Set) Float64(p *float64, name, env string, def float64, usage string, checks ...func(float64) error) {
	*p = def
	s.Var(&Value[float64]{P: p, Parse: ParseFloat, Checks: checks}, name, env, usage)
}

// Duration defines a time.Duration flag.
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string, checks ...func(time.Duration) error) {
	*p = def
	s.Var(&Value[time.Duration]{P: p, Parse: ParseDuration, Checks: checks}, name, env, usage)
}

// Bool defines a boolean flag: "--name" alone means true.
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	*p = def
	s.Var(&boolValue{Value[bool]{P: p, Parse: ParseBool}}, name, env, usage)
}

// List defines a repeatable flag whose environment variable holds a
// comma-separated list; each item is checked. Items from the command line
// are added to those from the environment.
func (s *Set) List(p *[]string, name, env, usage string, checks ...func(string) error) {
	s.Var(&listValue{p: p, checks: checks}, name, env, usage)
}

// Parse parses args, refuses positional arguments (these binaries take
// none), and returns every problem found in the environment and on the
// command line, joined; flag.ErrHelp alone for -h or --help.
func (s *Set) Parse(args []string) error {
	// The flag package prints the whole usage after any error; the error
	// alone says more, so usage is printed for -h and --help only.
	out := s.fs.Output()
	s.fs.SetOutput(io.Discard)
	err := s.fs.Parse(args)
	s.fs.SetOutput(out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			s.fs.Usage()
			return err
		}
		return errors.Join(append(s.errs, err)...)
	}
	if rest := s.fs.Args(); len(rest) > 0 {
		s.errs = append(s.errs, fmt.Errorf("unexpected argument %q: %s takes flags only, no arguments (see --help)", rest[0], filepath.Base(s.fs.Name())))
	}
	return errors.Join(s.errs...)
}

// IsSet reports whether the flag was given on the command line or by its
// environment variable.
func (s *Set) IsSet(name string) bool {
	if s.fromEnv[name] {
		return true
	}
	set := false
	s.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// Name says where the flag's value came from, for messages: "--name", or
// its environment variable when that set it and the command line did not.
func (s *Set) Name(name string) string {
	onCommandLine := false
	s.fs.Visit(func(f *flag.Flag) { onCommandLine = onCommandLine || f.Name == name })
	if !onCommandLine && s.fromEnv[name] {
		return s.envOf[name]
	}
	return "--" + name
}

// Value is a flag.Value of any type: Parse turns the text into a T, then
// every check must pass before the value is stored.
type Value[T any] struct {
	P      *T
	Parse  func(string) (T, error)
	Checks []func(T) error
	// Hide keeps the value out of String, hence out of the help's default.
	Hide bool
}

// Set implements flag.Value.
func (v *Value[T]) Set(raw string) error {
	x, err := v.Parse(raw)
	if err != nil {
		return err
	}
	for _, check := range v.Checks {
		if err := check(x); err != nil {
			return err
		}
	}
	*v.P = x
	return nil
}

// String implements flag.Value.
func (v *Value[T]) String() string {
	if v == nil || v.P == nil || v.Hide {
		return ""
	}
	switch x := any(*v.P).(type) {
	case string:
		return x
	case time.Duration:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

type boolValue struct{ Value[bool] }

// IsBoolFlag lets "--name" stand for "--name=true".
func (*boolValue) IsBoolFlag() bool { return true }

type listValue struct {
	p      *[]string
	checks []func(string) error
}

func (l *listValue) String() string {
	if l == nil || l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l *listValue) Set(raw string) error {
	for _, item := range strings.Split(raw, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return fmt.Errorf("empty item in %q: want a comma-separated list", raw)
		}
		for _, check := range l.checks {
			if err := check(item); err != nil {
				return fmt.Errorf("%q: %w", item, err)
			}
		}
		*l.p = append(*l.p, item)
	}
	return nil
}

// ParseInt parses a decimal int.
func ParseInt(raw string) (int, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, strconv.IntSize)
	if err != nil {
		return 0, errors.New("want a whole number")
	}
	return int(n), nil
}

// ParseInt64 parses a decimal int64.
func ParseInt64(raw string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		return 0, errors.New("want a whole number")
	}
	return n, nil
}

// ParseFloat parses a finite number.
func ParseFloat(raw string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || f != f || f > 1e300 || f < -1e300 { // NaN and infinities are no setting
		return 0, errors.New("want a number")
	}
	return f, nil
}

// ParseDuration parses a Go duration with its unit.
func ParseDuration(raw string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil {
		return 0, errors.New("want a duration such as 15s, 500ms or 2m")
	}
	return d, nil
}

// ParseBool parses true or false (also 1, 0, t, f in any case).
func ParseBool(raw string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(raw))
	if err != nil {
		return false, errors.New("want true or false")
	}
	return b, nil
}

// Between refuses values outside [lo, hi].
func Between[T cmp.Ordered](lo, hi T) func(T) error {
	return func(v T) error {
		if v < lo || v > hi {
			return fmt.Errorf("want %v to %v", show(lo), show(hi))
		}
		return nil
	}
}

// Positive refuses zero and negative values, and values above hi.
func Positive[T cmp.Ordered](hi T) func(T) error {
	return func(v T) error {
		var zero T
		if v <= zero || v > hi {
			return fmt.Errorf("want more than 0, at most %v", show(hi))
		}
		return nil
	}
}

func show[T any](v T) string {
	switch x := any(v).(type) {
	case time.Duration:
		return x.String()
	case int64:
		return strconv.FormatInt(x, 10)
	default:
		return fmt.Sprint(x)
	}
}

// OneOf refuses any value but the given ones.
func OneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
	}
}

// NotEmpty refuses the empty string.
func NotEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("want a value, not an empty one")
	}
	return nil
}

// Printable refuses control characters, spaces and values longer than max
// bytes: names and ids that go into logs, leases and headers.
func Printable(max int) func(string) error {
	return func(v string) error {
		if len(v) > max {
			return fmt.Errorf("want at most %d bytes, not %d", max, len(v))
		}
		for _, r := range v {
			if unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar {
				return fmt.Errorf("want no spaces or control characters, found %q", r)
			}
		}
		return nil
	}
}

// Path refuses an empty path and one holding a NUL or line break.
func Path(v string) error {
	if v == "" {
		return errors.New("want a path, not an empty one")
	}
	if strings.ContainsAny(v, "\x00\r\n") {
		return errors.New("want a path without NUL or line breaks")
	}
	return nil
}

// HostPort refuses what is not a listen or dial address host:port with a
// numeric port (the host may be empty: all interfaces).
func HostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("want host:port, such as 127.0.0.1:8080 or [::1]:8080")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || strings.HasPrefix(port, "+") {
		return fmt.Errorf("want a port from 0 to 65535, not %q", port)
	}
	if strings.ContainsAny(host, " /\\@?#%\x00") || strings.IndexFunc(host, unicode.IsControl) >= 0 {
		return fmt.Errorf("want a host name or IP address, not %q", host)
	}
	return nil
}

// URL refuses what is not an absolute URL with one of the schemes and a
// host (BaseURL and Origin are stricter).
func URL(schemes ...string) func(string) error {
	return func(v string) error {
		_, err := parseURL(v, schemes)
		return err
	}
}

// BaseURL refuses what is not an absolute URL of one of the schemes with a
// host and at most a path: no credentials, query or fragment, since paths
// are appended to it.
func BaseURL(schemes ...string) func(string) error {
	return func(v string) error {
		u, err := parseURL(v, schemes)
		if err != nil {
			return err
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
			return errors.New("want no credentials, query or fragment")
		}
		return nil
	}
}

// Origin refuses what is not scheme://host[:port] with one of the schemes:
// no path, query, fragment or credentials.
func Origin(schemes ...string) func(string) error {
	return func(v string) error {
		u, err := parseURL(v, schemes)
		if err != nil {
			return err
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("want an origin only, such as %s://host:port, without path, query or credentials", schemes[0])
		}
		return nil
	}
}

func parseURL(v string, schemes []string) (*url.URL, error) {
	want := fmt.Sprintf("want a URL such as %s://host:port", schemes[0])
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, errors.New(want)
	}
	ok := false
	for _, s := range schemes {
		ok = ok || strings.EqualFold(u.Scheme, s)
	}
	if !ok {
		return nil, fmt.Errorf("%s (scheme %s)", want, strings.Join(schemes, " or "))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("want a port from 1 to 65535, not %q", p)
		}
	}
	return u, nil
}
