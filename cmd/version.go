package cmd

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// Build information, set by the linker:
//
//	-ldflags "-X github.com/echoctl/echoctl/cmd.version=1.2.3 -X ...cmd.commit=abc -X ...cmd.date=2026-11-25T00:00:00Z"
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// versionString describes this build on one line.
func versionString() string {
	return fmt.Sprintf("echoctl %s (commit %s, built %s, %s %s/%s)", version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd(streams Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date, Go version and platform",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(streams.Out, versionString())
			return asRuntimeError(err)
		},
	}
}
