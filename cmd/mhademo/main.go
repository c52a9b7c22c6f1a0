// Command mhademo is `make demo`: the product's main job on a local
// sandbox. It starts 3 MariaDB servers and 3 mhanode managers on loopback,
// shows `mhactl status` and `mhactl check-repl`, writes rows, kills the
// master with kill -9, shows the automatic failover live, the final status
// and the failover report, verifies that no row was lost, and cleans up.
//
//	mhademo [--keep] [--no-managers] [--gtid] [--rows N] [--dir DIR] [--bin-dir DIR]
//
// It parses flags and wires package demo; the logic lives there.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mharaft/mharaft/demo"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("mhademo", flag.ContinueOnError)
	var opts demo.Options
	fs.BoolVar(&opts.Keep, "keep", false, "after the demo, keep the sandbox running (and print how to use mhactl against it) until Ctrl-C")
	fs.BoolVar(&opts.NoManagers, "no-managers", false, "only the sandbox and check-repl: no managers, no failover")
	fs.BoolVar(&opts.GTID, "gtid", false, "replicas replicate with GTID (MASTER_USE_GTID=slave_pos) instead of file/position")
	fs.IntVar(&opts.Rows, "rows", 10, "rows per batch (three batches are written before the kill)")
	fs.StringVar(&opts.Dir, "dir", "", "directory of the sandbox, kept afterwards (default: a new temporary directory, removed)")
	fs.StringVar(&opts.BinDir, "bin-dir", "", "directory of mhactl and mhanode (default: the directory of mhademo)")
	fs.DurationVar(&opts.FailoverTimeout, "failover-timeout", 90*time.Second, "give up waiting for the automatic failover after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mhademo: unexpected arguments %q\n", fs.Args())
		return 2
	}
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
