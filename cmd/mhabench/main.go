// Command mhabench runs the measured benchmark suites of package bench
// (`make bench`). With no arguments it runs every suite.
//
//	mhabench [--out DIR] [--quick] [SUITE...]
//	mhabench version
//
// Exit status: 0 every suite ran, 1 a suite failed, 2 bad flags.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/mharaft/mharaft/bench"
	"github.com/mharaft/mharaft/internal/cli"
	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var (
		out   string
		quick bool
		code  int
	)
	root := &cobra.Command{
		Use:   "mhabench [SUITE...]",
		Short: "make bench: the measured benchmark suites (real servers), as tables and JSON",
		Long: "mhabench runs the measured benchmark suites of package bench (make bench), prints\n" +
			"their tables and writes JSON under --out. With no SUITE it runs every suite: " + strings.Join(bench.Names(), ", ") + ".\n" +
			"Exit status: 0 every suite ran, 1 a suite failed, 2 bad flags.",
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(_ *cobra.Command, names []string) error {
			if len(names) == 0 {
				names = bench.Names()
			}
			for _, n := range names {
				if _, err := bench.Run(context.Background(), n, out, quick, os.Stdout); err != nil {
					fmt.Fprintln(os.Stderr, "mhabench:", err)
					code = 1
				}
			}
			return nil
		},
	}
	fs := root.Flags()
	fs.StringVar(&out, "out", "out/bench", "directory for the JSON results")
	fs.BoolVar(&quick, "quick", false, "smaller runs")
	root.CompletionOptions.DisableDefaultCmd = true // a developer tool: no completion script
	root.AddCommand(cli.VersionCmd("mhabench"))
	root.InitDefaultHelpFlag()
	root.SetArgs(cli.NormalizeArgs(fs, args))
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "mhabench: %v (mhabench --help lists the flags)\n", err)
		return 2
	}
	return code
}
