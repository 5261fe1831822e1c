package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	stamp := func(version string, settings ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/ibmail/ibmail", Version: version}, Settings: settings}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}
	at := debug.BuildSetting{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	tests := []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     Info
		wantLine string
	}{
		{"checkout", stamp("(devel)", rev, at, dirty), "",
			Info{Version: "devel", Revision: rev.Value, Time: at.Value, Modified: true, GoVersion: "go1.26.0"},
			"devel (0123456789ab, modified, 2026-12-01T10:00:00Z) go1.26.0"},
		{"no stamp at all", stamp(""), "", Info{Version: "devel", GoVersion: "go1.26.0"}, "devel go1.26.0"},
		{"module version", stamp("v0.3.1", rev), "", Info{Version: "v0.3.1", Revision: rev.Value, GoVersion: "go1.26.0"}, "v0.3.1 (0123456789ab) go1.26.0"},
		{"link-time override wins", stamp("(devel)"), "v1.2.3", Info{Version: "v1.2.3", GoVersion: "go1.26.0"}, "v1.2.3 go1.26.0"},
		{"hostile override is cleaned", stamp("(devel)"), "v1\n2\x00 \"3\u202e", Info{Version: `v12"3`, GoVersion: "go1.26.0"}, `v12"3 go1.26.0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromBuildInfo(tt.bi, tt.override)
			if got != tt.want {
				t.Errorf("FromBuildInfo = %+v, want %+v", got, tt.want)
			}
			if line := got.String(); line != tt.wantLine {
				t.Errorf("String() = %q, want %q", line, tt.wantLine)
			}
		})
	}
}

func TestReadIsStable(t *testing.T) {
	a, b := Read(), Read()
	if a != b || a.Version == "" || a.GoVersion == "" {
		t.Errorf("Read() = %+v then %+v, want one non-empty build", a, b)
	}
}
