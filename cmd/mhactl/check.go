package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/topology"
)

// checkFlags are the flags check-repl and check-ssh share.
type checkFlags struct {
	conf, globalConf string
	output           string
	skipSSH          bool
	timeout          time.Duration
}

func (c *checkFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.conf, "conf", "", "application configuration file (MHA app1.conf)")
	f.StringVar(&c.globalConf, "global-conf", "", "global configuration file (MHA masterha_default.conf)")
	f.StringVarP(&c.output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&c.timeout, "timeout", time.Minute, "give up after this long")
	cmd.MarkFlagRequired("conf")
}

func (c *checkFlags) load() (*config.App, error) {
	if c.output != "table" && c.output != "json" {
		return nil, withCode(exitUsage, fmt.Errorf("--output %q: want table or json", c.output))
	}
	app, err := config.Load(c.conf, c.globalConf)
	if err != nil {
		return nil, withCode(exitInternal, fmt.Errorf("load configuration %s: %w", c.conf, err))
	}
	return app, nil
}

func init() {
	var repl checkFlags
	checkRepl := &cobra.Command{
		Use:   "check-repl --conf app1.conf [--global-conf masterha_default.conf] [-o table|json]",
		Short: "Check the replication of an application (masterha_check_repl)",
		Long: `check-repl connects to every configured server, prints the replication tree
and every problem that would make a failover unsafe or impossible, with the
server it concerns and how to fix it; an application with no replica of its
master to promote is refused. It exits 0 only when no problem of
severity error was found, 1 otherwise, 3 when the configuration cannot be loaded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			app, err := repl.load()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), repl.timeout)
			defer cancel()
			topo := topology.Discover(ctx, app)
			problems := topology.Check(topo)
			problems = append(problems, topology.CheckReplLogin(ctx, app, 0)...)
			if !repl.skipSSH {
				problems = append(problems, topology.CheckSSH(ctx, app)...)
			}
			return report(cmd.OutOrStdout(), repl.output, topo, problems, "MySQL Replication Health")
		},
	}
	repl.register(checkRepl)
	checkRepl.Flags().BoolVar(&repl.skipSSH, "skip-ssh", false, "do not check SSH access to the servers")

	var ssh checkFlags
	checkSSH := &cobra.Command{
		Use:   "check-ssh --conf app1.conf [--global-conf masterha_default.conf] [-o table|json]",
		Short: "Check SSH access to every server of an application (masterha_check_ssh)",
		Long: `check-ssh connects to every configured server over SSH, verifying its host
key against ssh_known_hosts (or -o UserKnownHostsFile in ssh_options), and
checks that master_binlog_dir exists there.
It exits 0 when every server passed, 1 otherwise, 3 when the configuration
cannot be loaded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			app, err := ssh.load()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), ssh.timeout)
			defer cancel()
			problems := topology.CheckSSH(ctx, app)
			return reportSSH(cmd.OutOrStdout(), ssh.output, app, problems)
		},
	}
	ssh.register(checkSSH)
	rootCmd.AddCommand(checkRepl, checkSSH)
}

// report prints the tree and the problems, and returns the exit error.
func report(w io.Writer, format string, topo *topology.Topology, problems []topology.Problem, what string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(topology.NewReport(topo, problems)); err != nil {
			return withCode(exitInternal, err)
		}
	} else {
		topology.Tree(topo, w)
		printProblems(w, problems)
	}
	return verdict(w, format, problems, what)
}

func reportSSH(w io.Writer, format string, app *config.App, problems []topology.Problem) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		out := struct {
			App      string             `json:"app"`
			Healthy  bool               `json:"healthy"`
			Problems []topology.Problem `json:"problems"`
		}{app.Name, !topology.HasErrors(problems), problems}
		if out.Problems == nil {
			out.Problems = []topology.Problem{}
		}
		if err := enc.Encode(out); err != nil {
			return withCode(exitInternal, err)
		}
	} else {
		failed := map[string]bool{}
		for _, p := range problems {
			failed[p.Server] = true
		}
		for _, s := range append(append([]*config.Server{}, app.Servers...), app.BinlogServers...) {
			state := "ok"
			if failed[s.Name] {
				state = "FAILED"
			}
			fmt.Fprintf(w, "%s %s ssh %s@%s: %s\n", s.Name, s, s.SSHUser, s.SSHAddr(), state)
		}
		printProblems(w, problems)
	}
	return verdict(w, format, problems, "SSH connection tests")
}

func printProblems(w io.Writer, problems []topology.Problem) {
	if len(problems) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d problem(s):\n", len(problems))
	for _, p := range problems {
		who := p.Server
		if p.Addr != "" {
			who += " " + p.Addr
		}
		if who == "" {
			who = "application"
		}
		fmt.Fprintf(w, "[%s] %s: %s\n    fix: %s\n", p.Severity, who, p.What, p.Fix)
	}
}

func verdict(w io.Writer, format string, problems []topology.Problem, what string) error {
	if topology.HasErrors(problems) {
		n := 0
		for _, p := range problems {
			if p.Severity == topology.Error {
				n++
			}
		}
		if format == "table" {
			fmt.Fprintf(w, "\n%s is NOT OK!\n", what)
		}
		return withCode(exitProblem, errors.New(fmt.Sprint(what, ": ", n, " error(s)")))
	}
	if format == "table" {
		fmt.Fprintf(w, "\n%s is OK.\n", what)
	}
	return nil
}
