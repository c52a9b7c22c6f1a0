package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/mharaft/mharaft/api"
	"github.com/spf13/cobra"
)

// Version is this build's version: api.BuildVersion when the build set it
// (-ldflags "-X github.com/mharaft/mharaft/api.BuildVersion=v1.2.3", as
// make dist does), else the module version that `go install ...@v1.2.3`
// recorded, else "dev".
func Version() string {
	if api.BuildVersion != "dev" && api.BuildVersion != "" {
		return api.BuildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// WriteVersion writes what `CMD version` prints: the command and its
// version, then the VCS revision, its time and whether the tree had
// uncommitted changes (when Go's -buildvcs recorded them), and the Go
// version and platform it was built with.
func WriteVersion(w io.Writer, command string) {
	fmt.Fprintf(w, "%s %s\n", command, Version())
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, at, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			line := "commit: " + rev
			if at != "" {
				line += " (" + at + ")"
			}
			if modified == "true" {
				line += ", with uncommitted changes"
			}
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintf(w, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// VersionCmd is the `version` subcommand of command: it prints
// WriteVersion's lines to standard output.
func VersionCmd(command string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print " + command + "'s version, the commit it was built from and the Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			WriteVersion(cmd.OutOrStdout(), command)
			return nil
		},
	}
}
