// Command mhactl is the operator's command line for mharaft: checks,
// switch, failover and the cluster's status. Each command group lives in
// its own file and registers itself on rootCmd in an init function; the
// logic lives in the packages, this command only parses flags and wires.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes, documented in the README.
const (
	exitOK       = 0
	exitProblem  = 1 // the command ran and found a problem (unhealthy, refused, failed)
	exitUsage    = 2 // bad flags or arguments
	exitInternal = 3 // could not run at all (cannot reach anything, bad config file)
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

var rootCmd = &cobra.Command{
	Use:           "mhactl",
	Short:         "Operate mharaft: check, switch, fail over and watch MySQL/MariaDB replication",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mhactl:", err)
		code := exitUsage
		if ee, ok := err.(*exitError); ok {
			code = ee.code
		}
		os.Exit(code)
	}
}
