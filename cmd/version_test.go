package cmd

import (
	"context"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestNewBuild(t *testing.T) {
	vcs := func(mainVersion string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/echoctl/echoctl", Version: mainVersion}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	const rev = "e81e59a751364e434f3a09548997c8ce31c3d84b"
	tests := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  build
	}{
		{
			name:    "goreleaser",
			version: "1.2.3", commit: rev, date: "2026-11-25T04:29:55Z",
			bi:   vcs("(devel)"),
			want: build{Version: "1.2.3", Commit: rev, Date: "2026-11-25T04:29:55Z"},
		},
		{
			name:    "no build info",
			version: "dev", commit: "none", date: "unknown",
			want: build{Version: "dev", Commit: "none", Date: "unknown", Dev: true},
		},
		{
			name:    "go test",
			version: "dev", commit: "none", date: "unknown",
			bi:   vcs(""),
			want: build{Version: "dev", Commit: "none", Date: "unknown", Dev: true},
		},
		{
			name:    "go build without vcs",
			version: "dev", commit: "none", date: "unknown",
			bi:   vcs("(devel)"),
			want: build{Version: "dev", Commit: "none", Date: "unknown", Dev: true},
		},
		{
			name:    "go build in a modified work tree",
			version: "dev", commit: "none", date: "unknown",
			bi:   vcs("v0.0.0-20261125042955-e81e59a75136+dirty", "vcs.revision", rev, "vcs.modified", "true"),
			want: build{Version: "0.0.0-20261125042955-e81e59a75136+dirty", Commit: rev + "-dirty", Date: "unknown", Dev: true},
		},
		{
			name:    "go install at an untagged commit",
			version: "dev", commit: "none", date: "unknown",
			bi:   vcs("v1.2.4-0.20261125042955-e81e59a75136"),
			want: build{Version: "1.2.4-0.20261125042955-e81e59a75136", Commit: "none", Date: "unknown", Dev: true},
		},
		{
			name:    "go install at a release",
			version: "dev", commit: "none", date: "unknown",
			bi:   vcs("v1.2.3"),
			want: build{Version: "1.2.3", Commit: "none", Date: "unknown"},
		},
		{
			name:    "go build at a clean tagged commit",
			version: "dev", commit: "none", date: "unknown",
			bi:   vcs("v1.2.3", "vcs.revision", rev, "vcs.modified", "false"),
			want: build{Version: "1.2.3", Commit: rev, Date: "unknown"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.GoVersion = runtime.Version()
			tt.want.Platform = runtime.GOOS + "/" + runtime.GOARCH
			if got := newBuild(tt.version, tt.commit, tt.date, tt.bi); got != tt.want {
				t.Errorf("newBuild = %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

func TestBuildString(t *testing.T) {
	b := build{Version: "1.2.3", Commit: "abc", Date: "2026-11-25T04:29:55Z", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	if got, want := b.String(), "echoctl 1.2.3 (commit abc, built 2026-11-25T04:29:55Z, go1.26.8 linux/amd64)"; got != want {
		t.Errorf("release: %q, want %q", got, want)
	}
	b.Version, b.Dev = "dev", true
	if got, want := b.String(), "echoctl dev (commit abc, built 2026-11-25T04:29:55Z, go1.26.8 linux/amd64; development build)"; got != want {
		t.Errorf("dev: %q, want %q", got, want)
	}
}

// TestVersionBinary runs built binaries as a user would: one stamped by the
// linker as goreleaser stamps releases, and one plain development build.
func TestVersionBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not building binaries")
	}
	platform := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	const pkg = "github.com/echoctl/echoctl/cmd"
	tests := []struct {
		name  string
		flags []string
		want  string
	}{
		{
			name:  "release",
			flags: []string{"-trimpath", "-ldflags", "-X " + pkg + ".version=1.2.3 -X " + pkg + ".commit=e81e59a -X " + pkg + ".date=2026-11-25T04:29:55Z"},
			want:  "echoctl 1.2.3 (commit e81e59a, built 2026-11-25T04:29:55Z, " + platform + ")\n",
		},
		{
			name:  "dev",
			flags: []string{"-buildvcs=false"},
			want:  "echoctl dev (commit none, built unknown, " + platform + "; development build)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := buildEchoctl(t, tt.flags...)
			for _, args := range []string{"version", "--version"} {
				out, err := exec.Command(bin, args).Output()
				if err != nil {
					t.Fatalf("echoctl %s: %v", args, err)
				}
				if string(out) != tt.want {
					t.Errorf("echoctl %s = %q, want %q", args, out, tt.want)
				}
			}
		})
	}
}

// TestVersionOutputFails: version to a full standard output exits 1 with
// "write standard output: ...", as every other command says it.
func TestVersionOutputFails(t *testing.T) {
	var stderr strings.Builder
	code := Run(context.Background(), []string{"version"}, Streams{In: strings.NewReader(""), Out: fullWriter{}, Err: &stderr})
	if want := "echoctl: write standard output: no space left on device\n"; code != ExitNetwork || stderr.String() != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), want)
	}
}
