// Command mhabench runs the measured benchmark suites of package bench
// (`make bench`). With no arguments it runs every suite.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/mharaft/mharaft/bench"
)

func main() {
	out := flag.String("out", "out/bench", "directory for the JSON results")
	quick := flag.Bool("quick", false, "smaller runs")
	flag.Parse()
	names := flag.Args()
	if len(names) == 0 {
		names = bench.Names()
	}
	failed := false
	for _, n := range names {
		if _, err := bench.Run(context.Background(), n, *out, *quick, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "mhabench:", err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}
