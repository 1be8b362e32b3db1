package cmd

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Build information, set by the linker (goreleaser and `make build` do):
//
//	-ldflags "-X github.com/echoctl/echoctl/cmd.version=1.2.3 -X ...cmd.commit=abc -X ...cmd.date=2026-11-25T00:00:00Z"
//
// A binary built without them is a development build: version stays "dev",
// and buildInfo fills in what the go command recorded.
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// build describes one echoctl binary.
type build struct {
	Version   string // "1.2.3", "0.0.1-next" for a snapshot, or "dev"
	Commit    string // the git revision, or "none"
	Date      string // when it was built (RFC 3339), or "unknown"
	GoVersion string // runtime.Version()
	Platform  string // GOOS/GOARCH
	// Dev is true when neither the linker nor `go install module@v1.2.3`
	// set a release version: a binary built from a work tree by go build,
	// go run or go test, or from an untagged commit.
	Dev bool
}

// String is the one line that `echoctl version` and `echoctl --version`
// print.
func (b build) String() string {
	dev := ""
	if b.Dev {
		dev = "; development build"
	}
	return fmt.Sprintf("echoctl %s (commit %s, built %s, %s %s%s)", b.Version, b.Commit, b.Date, b.GoVersion, b.Platform, dev)
}

// buildInfo describes the running binary.
func buildInfo() build {
	bi, _ := debug.ReadBuildInfo()
	return newBuild(version, commit, date, bi)
}

// newBuild merges the linker's values with what the go command recorded in
// bi (which may be nil). The linker wins: goreleaser and `make build` set all
// three. Without them, `go install github.com/echoctl/echoctl@v1.2.3`
// records the module version (a release, though with no build date), and a
// build in a git work tree records the revision.
func newBuild(version, commit, date string, bi *debug.BuildInfo) build {
	b := build{
		Version:   version,
		Commit:    commit,
		Date:      date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if version != "dev" || bi == nil {
		b.Dev = version == "dev"
		return b
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" && commit == "none" {
		b.Commit = rev
		if settings["vcs.modified"] == "true" {
			b.Commit += "-dirty"
		}
	}
	mv := bi.Main.Version
	switch {
	case mv == "" || mv == "(devel)":
		// go test, or a work tree built without VCS stamping.
		b.Dev = true
	case pseudoVersion.MatchString(mv):
		// An untagged commit: go install module@main, or (Go 1.24 and
		// later) go build in a work tree, "+dirty" with uncommitted changes.
		b.Version, b.Dev = strings.TrimPrefix(mv, "v"), true
	default:
		b.Version = strings.TrimPrefix(mv, "v") // as goreleaser's {{ .Version }}
	}
	return b
}

// pseudoVersion matches the tail of a Go module pseudo-version,
// v0.0.0-20261125042955-e81e59a75136, with any +incompatible or +dirty.
var pseudoVersion = regexp.MustCompile(`[-.]\d{14}-[0-9a-f]{12}(\+[0-9A-Za-z.+-]*)?$`)

// versionString describes this build on one line.
func versionString() string { return buildInfo().String() }

func newVersionCmd(streams Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date, Go version and platform",
		Long: `Print the version, commit, build date, Go version and platform on one line,
as --version does. A binary built from a work tree without the release's
linker flags (go build, go run) says "development build".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := fmt.Fprintln(streams.Out, versionString()); err != nil {
				return runtimeError{fmt.Errorf("write standard output: %w", err)}
			}
			return nil
		},
	}
}
