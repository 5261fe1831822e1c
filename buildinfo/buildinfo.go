// Package buildinfo says which build of ibmail is running: the version, the
// commit it was built from and the Go toolchain, for --version, /healthz and
// the ibmail_build_info metric. It reads what the Go toolchain stamps into
// every binary, so a plain `go build` in a git checkout is enough; a release
// build may set the version with
// -ldflags "-X github.com/ibmail/ibmail/buildinfo.version=v1.2.3".
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
)

// version overrides the module version when set at link time.
var version string

// Info describes one build.
type Info struct {
	// Version is the release version (v1.2.3), the module's pseudo-version
	// when built as a dependency, or "devel" for a build from a checkout.
	Version string `json:"version"`
	// Revision is the commit the build is of; empty when unknown (no VCS
	// stamp, as under `go test` or `go run` of a file).
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time, RFC 3339; empty when unknown.
	Time string `json:"time,omitempty"`
	// Modified says the working tree had changes that are not committed.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built it, such as go1.26.0.
	GoVersion string `json:"goVersion"`
}

var (
	once sync.Once
	info Info
)

// Read returns the running binary's build. It reads the stamp once.
func Read() Info {
	once.Do(func() {
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			info = Info{Version: "devel", GoVersion: "unknown"}
			return
		}
		info = FromBuildInfo(bi, version)
	})
	return info
}

// FromBuildInfo derives an Info from a build stamp; override, when not
// empty, is the link-time version. It is separate from Read so that tests can
// feed it stamps of every kind.
func FromBuildInfo(bi *debug.BuildInfo, override string) Info {
	out := Info{Version: clean(override), GoVersion: bi.GoVersion}
	if out.Version == "" {
		out.Version = clean(bi.Main.Version)
	}
	if out.Version == "" || out.Version == "(devel)" {
		out.Version = "devel"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			out.Revision = clean(s.Value)
		case "vcs.time":
			out.Time = clean(s.Value)
		case "vcs.modified":
			out.Modified = s.Value == "true"
		}
	}
	return out
}

// clean keeps a stamp printable and short, so that a strange value given at
// link time cannot break a metric label or a log line.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x21 || r == 0x7f || r > 0x7e {
			return -1
		}
		return r
	}, s)
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// ShortRevision is the first 12 digits of the revision, as git shows it.
func (i Info) ShortRevision() string {
	if len(i.Revision) > 12 {
		return i.Revision[:12]
	}
	return i.Revision
}

// String is the one line --version prints: "devel (abc123def456, modified,
// 2026-12-01T10:00:00Z) go1.26.0".
func (i Info) String() string {
	var parts []string
	if r := i.ShortRevision(); r != "" {
		parts = append(parts, r)
	}
	if i.Modified {
		parts = append(parts, "modified")
	}
	if i.Time != "" {
		parts = append(parts, i.Time)
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%s %s", i.Version, i.GoVersion)
	}
	return fmt.Sprintf("%s (%s) %s", i.Version, strings.Join(parts, ", "), i.GoVersion)
}
