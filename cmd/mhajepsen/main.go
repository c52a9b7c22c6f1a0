// Command mhajepsen runs the chaos campaign of package jepsen (`make
// jepsen ROUNDS=n SEED=s`): real mariadbd, sshd and mhanode processes in
// network namespaces, randomised faults, checkers, and a report under
// out/jepsen (report.json, report.txt, timeline.html). It must run as root.
//
//	mhajepsen [--rounds N] [--seed S] [--nemeses a,b] [--out DIR] [--managers N] ...
//	mhajepsen version
//
// Exit status: 0 every round passed, 1 a round failed a check, 2 the
// campaign could not run (or bad flags).
//
// This command parses flags (cobra, like mhactl) and wires package jepsen;
// the logic lives there.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mharaft/mharaft/internal/cli"
	"github.com/mharaft/mharaft/jepsen"
	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var (
		o       jepsen.Options
		nemeses string
		code    int
	)
	root := &cobra.Command{
		Use:   "mhajepsen",
		Short: "make jepsen: the chaos campaign (real mariadbd, sshd and mhanode in network namespaces, nemeses, checkers)",
		Long: `mhajepsen runs the chaos campaign of package jepsen: real mariadbd, sshd and
mhanode processes in network namespaces, randomised faults, checkers, and a
report under --out (report.json, report.txt, timeline.html). It must run as root.
Exit status: 0 every round passed, 1 a round failed a check, 2 the campaign could
not run (or bad flags).`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			if nemeses != "" {
				o.Nemeses = strings.Split(nemeses, ",")
			}
			code = campaign(o)
			return nil
		},
	}
	fs := root.Flags()
	fs.IntVar(&o.Rounds, "rounds", 50, "number of rounds")
	fs.Int64Var(&o.Seed, "seed", 0, "random seed (0: from the clock; the seed used is printed)")
	fs.StringVar(&nemeses, "nemeses", "", "comma-separated nemeses to draw from (default all: "+strings.Join(names(), ",")+
		"; rogue-local-failover and dc-partition-semisync-fallback are deliberately broken deployments, never drawn by default)")
	fs.StringVar(&o.OutDir, "out", "out/jepsen", "directory for report.json, report.txt and timeline.html")
	fs.IntVar(&o.Managers, "managers", 3, "number of mhanode managers")
	fs.IntVar(&o.PingInterval, "ping-interval", 1, "ping_interval of app1.conf (seconds)")
	fs.BoolVar(&o.KeepDirs, "keep", false, "keep every round's directory (failed rounds are always kept)")
	fs.StringVar(&o.Dir, "dir", "", "scratch directory (default: a new temporary directory)")
	fs.IntVar(&o.TailMB, "tail-mb", 20, "MB of dead-master tail (rows no replica received) that leader-pause-mid-apply writes before the kill, in transactions of ~5 MB (each bigger than one apply batch)")
	fs.StringVar(&o.Layout, "layout", "", "datacenter layout of the dc-partition rounds: 3dc or 2dc+tb (default: in turn)")
	fs.DurationVar(&o.DCLatency, "dc-latency", jepsen.DefaultDCLatency, "one-way delay between datacenters in the dc-partition rounds (a delaying TCP relay between hosts; negative: none)")
	fs.StringVar(&o.MhanodeBin, "mhanode", os.Getenv("MHANODE_BIN"), "mhanode binary the managers run (default $MHANODE_BIN, else built from this module); "+
		"an older build may lack newer flags: clock-skew then records a harness error")
	root.CompletionOptions.DisableDefaultCmd = true // a developer tool: no completion script
	root.AddCommand(cli.VersionCmd("mhajepsen"))
	root.InitDefaultHelpFlag()
	root.SetArgs(cli.NormalizeArgs(fs, args))
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "mhajepsen: %v (mhajepsen --help lists the flags)\n", err)
		return 2
	}
	return code
}

// campaign runs the campaign and returns the exit status.
func campaign(o jepsen.Options) int {
	// SIGINT/SIGTERM cancel the campaign; Run's cleanup then removes every
	// process, namespace and link before we exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o.Log = os.Stderr
	rep, err := jepsen.Run(ctx, o)
	if rep != nil {
		rep.WriteText(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mhajepsen:", err)
		return 2
	}
	if !rep.Passed {
		return 1
	}
	return 0
}

func names() []string {
	var n []string
	for _, x := range jepsen.Nemeses() {
		n = append(n, x.Name)
	}
	return n
}
