// Command mhademo is `make demo`: the product's main job on a local
// sandbox. It starts 3 MariaDB servers and 3 mhanode managers on loopback,
// shows `mhactl status` and `mhactl check-repl`, writes rows, kills the
// master with kill -9, shows the automatic failover live, the final status
// and the failover report, verifies that no row was lost, and cleans up.
//
//	mhademo [--keep] [--no-managers] [--gtid] [--rows N] [--dir DIR] [--bin-dir DIR]
//	mhademo version
//
// Exit status: 0 the demo passed, 1 it failed, 2 bad flags.
//
// It parses flags (cobra, like mhactl) and wires package demo; the logic
// lives there.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mharaft/mharaft/demo"
	"github.com/mharaft/mharaft/internal/cli"
	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var opts demo.Options
	code := 0
	root := &cobra.Command{
		Use:   "mhademo",
		Short: "make demo: 3 MariaDB servers and 3 mhanode managers on loopback, kill the master, watch the failover",
		Long: `mhademo starts 3 MariaDB servers and 3 mhanode managers on loopback, shows
mhactl status and mhactl check-repl, writes rows, kills the master with kill -9,
shows the automatic failover live, the final status and the failover report,
verifies that no row was lost, and cleans up. It prints every mhanode and mhactl
command before it runs it. Exit status: 0 passed, 1 failed, 2 bad flags.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			code = runDemo(opts)
			return nil
		},
	}
	fs := root.Flags()
	fs.BoolVar(&opts.Keep, "keep", false, "after the demo, keep the sandbox running (and print how to use mhactl against it) until Ctrl-C")
	fs.BoolVar(&opts.NoManagers, "no-managers", false, "only the sandbox and check-repl: no managers, no failover")
	fs.BoolVar(&opts.GTID, "gtid", false, "replicas replicate with GTID (MASTER_USE_GTID=slave_pos) instead of file/position")
	fs.IntVar(&opts.Rows, "rows", 10, "rows per batch (three batches are written before the kill)")
	fs.StringVar(&opts.Dir, "dir", "", "directory of the sandbox, kept afterwards (default: a new temporary directory, removed)")
	fs.StringVar(&opts.BinDir, "bin-dir", "", "directory of mhactl and mhanode (default: the directory of mhademo)")
	fs.DurationVar(&opts.FailoverTimeout, "failover-timeout", 90*time.Second, "give up waiting for the automatic failover after this long")
	root.CompletionOptions.DisableDefaultCmd = true // a developer tool: no completion script
	root.AddCommand(cli.VersionCmd("mhademo"))
	root.InitDefaultHelpFlag()
	root.SetArgs(cli.NormalizeArgs(fs, args))
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "mhademo: %v (mhademo --help lists the flags)\n", err)
		return 2
	}
	return code
}

func runDemo(opts demo.Options) int {
	if opts.BinDir == "" {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "mhademo: cannot find my own directory; use --bin-dir:", err)
			return 2
		}
		opts.BinDir = filepath.Dir(exe)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "mhademo: warning: not root; the sandbox's mariadbd and sshd may not start")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := demo.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "\nmhademo: FAILED:", err)
		return 1
	}
	if !opts.NoManagers && !opts.Keep {
		fmt.Printf("\nDemo done: %s died, %s took over %.1f s later, all %d rows kept.\n",
			res.OldMaster, res.NewMaster, res.FailoverTook.Seconds(), len(res.Written))
	}
	return 0
}
