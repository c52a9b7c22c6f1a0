// Command mhajepsen runs the chaos campaign of package jepsen (`make
// jepsen ROUNDS=n SEED=s`): real mariadbd, sshd and mhanode processes in
// network namespaces, randomised faults, checkers, and a report under
// out/jepsen (report.json, report.txt, timeline.html). It must run as root.
//
// This command parses flags and wires package jepsen; the logic lives there.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mharaft/mharaft/jepsen"
)

func main() {
	rounds := flag.Int("rounds", 50, "number of rounds")
	seed := flag.Int64("seed", 0, "random seed (0: from the clock; the seed used is printed)")
	nemeses := flag.String("nemeses", "", "comma-separated nemeses to draw from (default all: "+strings.Join(names(), ",")+
		"; rogue-local-failover is a deliberately broken deployment, never drawn by default)")
	out := flag.String("out", "out/jepsen", "directory for report.json, report.txt and timeline.html")
	managers := flag.Int("managers", 3, "number of mhanode managers")
	ping := flag.Int("ping-interval", 1, "ping_interval of app1.conf (seconds)")
	keep := flag.Bool("keep", false, "keep every round's directory (failed rounds are always kept)")
	dir := flag.String("dir", "", "scratch directory (default: a new temporary directory)")
	tailMB := flag.Int("tail-mb", 20, "MB of dead-master tail (rows no replica received) that leader-pause-mid-apply writes before the kill, in transactions of ~5 MB (each bigger than one apply batch)")
	mhanode := flag.String("mhanode", os.Getenv("MHANODE_BIN"), "mhanode binary the managers run (default $MHANODE_BIN, else built from this module); "+
		"an older build may lack newer flags: clock-skew then records a harness error")
	flag.Parse()

	// SIGINT/SIGTERM cancel the campaign; Run's cleanup then removes every
	// process, namespace and link before we exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var list []string
	if *nemeses != "" {
		list = strings.Split(*nemeses, ",")
	}
	rep, err := jepsen.Run(ctx, jepsen.Options{Rounds: *rounds, Seed: *seed, Nemeses: list, OutDir: *out,
		Managers: *managers, PingInterval: *ping, KeepDirs: *keep, Dir: *dir, TailMB: *tailMB, MhanodeBin: *mhanode, Log: os.Stderr})
	if rep != nil {
		rep.WriteText(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mhajepsen:", err)
		os.Exit(2)
	}
	if !rep.Passed {
		os.Exit(1)
	}
}

func names() []string {
	var n []string
	for _, x := range jepsen.Nemeses() {
		n = append(n, x.Name)
	}
	return n
}
