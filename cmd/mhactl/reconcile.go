package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mharaft/mharaft/api"
)

// newReconcileCmd is `mhactl reconcile --app A --server S [--apply] [--json]`:
// the transactions a former master holds that the current master lacks
// (recorded by the leader when the server came back), and with --apply
// their replay on the current master. It goes through the leader's API.
func newReconcileCmd() *cobra.Command {
	var app, server string
	var apply, jsonOut bool
	cmd := &cobra.Command{
		Use:   "reconcile --app NAME --server NAME [--apply] [--json]",
		Short: "Show a diverged former master's transactions that the current master lacks; --apply replays them on the current master",
		Long: "A former master that comes back after a failover holding transactions the new master never got (a partition: it kept\n" +
			"taking writes) is fenced by the leader and kept out of the topology. reconcile shows those transactions (GTID, binlog\n" +
			"position, time, tables, SQL) as the leader reads them from its binlog; --apply replays them on the current master as one\n" +
			"transaction under the failover lock, stopping at the first conflict (nothing is applied then). Then `mhactl rejoin`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClusterClient()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			if !apply {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, max(clusterFlags.timeout, time.Minute))
				defer cancel()
			}
			res, err := c.Reconcile(ctx, app, server, apply)
			if err != nil {
				if ctx.Err() != nil && apply {
					return withCode(exitProblem, fmt.Errorf("interrupted: stopped waiting for the reconcile of %s; it goes on on the leader (mhactl reconcile --app %s --server %s shows the outcome)", server, app, server))
				}
				return apiCode(err, exitProblem)
			}
			if jsonOut {
				if err := printJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				printReconcile(cmd.OutOrStdout(), res, apply)
			}
			if apply && res.Conflict != "" {
				return withCode(exitProblem, errors.New("reconcile stopped at a conflict: "+res.Conflict))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&app, "app", "", "the application (required)")
	f.StringVar(&server, "server", "", "the diverged former master, name or HOST:PORT (required)")
	f.BoolVar(&apply, "apply", false, "replay the transactions on the current master (one transaction; stops at the first conflict, applying nothing)")
	f.BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.MarkFlagRequired("app")
	cmd.MarkFlagRequired("server")
	return cmd
}

func printReconcile(w io.Writer, r *api.Reconcile, apply bool) {
	fmt.Fprintf(w, "%s of %s: %s, %d transaction(s) the current master lacks after the failover of epoch %d\n",
		r.Server, r.App, r.State, len(r.Transactions), r.Epoch)
	if r.File != "" {
		fmt.Fprintf(w, "File (on the leader): %s\n", r.File)
	}
	for i, t := range r.Transactions {
		fmt.Fprintf(w, "\n#%d", i+1)
		if t.GTID != "" {
			fmt.Fprintf(w, " GTID %s", t.GTID)
		}
		fmt.Fprintf(w, " at %s, %s, tables %s\n", t.Binlog, t.Time.Local().Format("2006-01-02 15:04:05"), strings.Join(t.Tables, ", "))
		for _, s := range t.SQL {
			fmt.Fprintf(w, "  %s;\n", s)
		}
	}
	fmt.Fprintln(w)
	switch {
	case r.Conflict != "":
		fmt.Fprintf(w, "Replay stopped at a conflict (%d applied): %s\n", r.Applied, r.Conflict)
	case r.State == "reconciled":
		fmt.Fprintf(w, "Replayed %d transaction(s) on the current master; next: mhactl rejoin --app %s --host %s\n", r.Applied, r.App, r.Server)
	case !apply && r.State == "detected":
		fmt.Fprintf(w, "Review them, then: mhactl reconcile --app %s --server %s --apply\n", r.App, r.Server)
	}
}

func init() {
	rootCmd.AddCommand(newReconcileCmd())
}
