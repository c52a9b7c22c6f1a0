package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/failover"
)

// mhaFlagNames maps MHA's underscore spellings onto ours (--dead_master_host
// is --dead-master-host) so existing MHA command lines work.
func mhaFlagNames(f *pflag.FlagSet, name string) pflag.NormalizedName {
	return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
}

// commonFlags are shared by failover, switch and rejoin.
type commonFlags struct {
	local       bool
	app         string
	conf        string
	globalConf  string
	yes         bool
	interactive int
}

func (c *commonFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&c.local, "local", false, "run the pipeline from this host (no manager cluster)")
	f.StringVar(&c.app, "app", "", "application name, for the manager cluster (default: the base name of --conf)")
	f.StringVar(&c.conf, "conf", "", "application configuration file (MHA app1.conf); required with --local")
	f.StringVar(&c.globalConf, "global-conf", "", "global configuration file (MHA masterha_default.conf)")
	f.BoolVar(&c.yes, "yes", false, "do not ask for confirmation")
	f.IntVar(&c.interactive, "interactive", 1, "MHA's --interactive; 0 is --yes")
	f.SetNormalizeFunc(mhaFlagNames)
}

// appName is the application the cluster should act on.
func (c *commonFlags) appName() (string, error) {
	if c.app != "" {
		return c.app, nil
	}
	if c.conf != "" {
		return strings.TrimSuffix(filepath.Base(c.conf), filepath.Ext(c.conf)), nil
	}
	return "", withCode(exitUsage, errors.New("name the application with --app (or --conf), or run the pipeline here with --local --conf FILE"))
}

// load reads the configuration for a --local run.
func (c *commonFlags) load() (*config.App, error) {
	if c.conf == "" {
		return nil, withCode(exitUsage, errors.New("--local needs --conf app1.conf"))
	}
	app, err := config.Load(c.conf, c.globalConf)
	if err != nil {
		return nil, withCode(exitInternal, err)
	}
	return app, nil
}

func (c *commonFlags) assumeYes() bool { return c.yes || c.interactive == 0 }

// hostPort joins --x-host and --x-port; a host that already has a port
// stays as it is, a bare host gets the port (default 3306, as MHA).
func hostPort(host string, port int) string {
	if host == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if port == 0 {
		port = 3306
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}

// clusterRef names a server for the cluster API, which takes a server's
// name (server2) or its host:port: a bare value without --*-port is passed
// unchanged, so `--new-master server2` works; with a port it is host:port.
func clusterRef(host string, port int) string {
	if port == 0 {
		return host
	}
	return hostPort(host, port)
}

// signalContext is cancelled on SIGINT/SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt)
}

func pipelineCode(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, failover.ErrAborted) || errors.Is(err, failover.ErrRefused) || errors.Is(err, failover.ErrRecentFailover) {
		return withCode(exitProblem, err)
	}
	return withCode(exitProblem, err)
}

func newFailoverCmd() *cobra.Command {
	var c commonFlags
	var deadHost, newHost, masterState string
	var deadPort, newPort int
	var ignoreLast, skipChangeMaster, skipDisableReadOnly, ignoreBinlogServerError bool
	cmd := &cobra.Command{
		Use:   "failover (--app app1 | --local --conf app1.conf) --dead-master HOST:PORT [--new-master HOST:PORT]",
		Short: "Fail over a dead master (masterha_master_switch --master_state=dead)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if masterState == "alive" {
				return withCode(exitUsage, errors.New("--master-state=alive is an online switch: use `mhactl switch`"))
			}
			dead := hostPort(deadHost, deadPort)
			if !c.local {
				if skipChangeMaster || skipDisableReadOnly {
					// The managers repair a topology whole: a half-repointed
					// one (replicas left on the dead master, a read-only new
					// master) is one they would watch and act on wrongly.
					return withCode(exitUsage, errors.New("--skip-change-master and --skip-disable-read-only leave the topology half-repaired for the operator to finish: they exist only with --local (stop automatic failover with `mhactl pause --app APP` first)"))
				}
				name, err := c.appName()
				if err != nil {
					return err
				}
				return runClusterAction(cmd, api.Action{Kind: api.ActionFailover, App: name, DeadMaster: clusterRef(deadHost, deadPort),
					NewMaster: clusterRef(newHost, newPort), IgnoreLastFailover: ignoreLast, IgnoreBinlogServerError: ignoreBinlogServerError})
			}
			app, err := c.load()
			if err != nil {
				return err
			}
			if dead == "" {
				return withCode(exitUsage, errors.New("--dead-master HOST:PORT is required"))
			}
			if !ignoreLast {
				if err := failover.CheckLastFailover(app, time.Now()); err != nil {
					return withCode(exitProblem, err)
				}
			}
			journal, err := failover.OpenLocalJournal(filepath.Join(app.ManagerWorkdir,
				fmt.Sprintf("failover_journal_%s_%s.json", app.Name, time.Now().Format("20060102150405"))))
			if err != nil {
				return withCode(exitInternal, err)
			}
			ctx, cancel := signalContext()
			defer cancel()
			_, err = failover.DeadMaster(ctx, failover.FailoverOptions{
				Options: failover.Options{App: app, Journal: journal, Out: cmd.OutOrStdout(), In: cmd.InOrStdin(),
					Yes: c.assumeYes(), NewMaster: hostPort(newHost, newPort), IgnoreBinlogServerError: ignoreBinlogServerError,
					Switch: failover.SwitchOptions{SkipChangeMaster: skipChangeMaster, SkipDisableReadOnly: skipDisableReadOnly}},
				DeadMaster: dead,
			})
			return pipelineCode(err)
		},
	}
	c.add(cmd)
	f := cmd.Flags()
	f.StringVar(&deadHost, "dead-master", "", "the dead master, HOST:PORT (MHA: --dead_master_host)")
	f.StringVar(&deadHost, "dead-master-host", "", "alias of --dead-master")
	f.IntVar(&deadPort, "dead-master-port", 0, "port of --dead-master-host (default 3306)")
	f.StringVar(&newHost, "new-master", "", "the new master, HOST:PORT; default: elected by MHA's rules")
	f.StringVar(&newHost, "new-master-host", "", "alias of --new-master")
	f.IntVar(&newPort, "new-master-port", 0, "port of --new-master-host (default 3306)")
	f.StringVar(&masterState, "master-state", "dead", "MHA's --master_state (dead)")
	f.BoolVar(&ignoreLast, "ignore-last-failover", false, "fail over even if the last failover is younger than last_failover_minute")
	f.BoolVar(&ignoreBinlogServerError, "ignore-binlog-server-error", false, "when the dead master's binlog cannot be read and every binlog server ([binlogN]) fails too, fail over anyway and report its tail lost (default: refuse, changing nothing)")
	f.BoolVar(&skipChangeMaster, "skip-change-master", false, "with --local: apply the missing events on every replica but repoint none (they stay replicas of the dead master) and keep the new master's replication settings")
	f.BoolVar(&skipDisableReadOnly, "skip-disable-read-only", false, "with --local: leave read_only on on the new master")
	f.String("dead-master-ip", "", "accepted for MHA compatibility (the configuration gives the IP)")
	return cmd
}

// switchFlags are masterha_master_switch --master_state=alive's flags
// beyond the new master and --orig_master_is_new_slave.
type switchFlags struct {
	checkOnly, skipChangeMaster, skipDisableReadOnly bool
	sshReachable                                     int
	runningUpdatesLimit, runningSecondsLimit         int
}

func (s *switchFlags) add(f *pflag.FlagSet) {
	f.BoolVar(&s.checkOnly, "check-only", false, "run the checks and print the plan, change nothing; exit 0 if the switch would proceed")
	f.BoolVar(&s.skipChangeMaster, "skip-change-master", false, "do not repoint the other replicas: they stay replicas of the old master")
	f.BoolVar(&s.skipDisableReadOnly, "skip-disable-read-only", false, "leave the new master read_only=1")
	f.IntVar(&s.sshReachable, "ssh-reachable", 2, "whether the old master is reachable over SSH: 0 no (master_ip_online_change_script gets no --orig_master_ssh_*), 1 yes, 2 unknown")
	f.IntVar(&s.runningUpdatesLimit, "running-updates-limit", 0, "refuse if an update runs this many seconds on the old master (default: running_updates_limit of the configuration)")
	f.IntVar(&s.runningSecondsLimit, "running-seconds-limit", int(failover.DefaultRunningSecondsLimit/time.Second), "refuse if any query runs this many seconds on the new master")
}

// options checks the flags and returns them for failover.Switch; changed
// tells which flags the command line set.
func (s *switchFlags) options(changed func(string) bool) (failover.SwitchOptions, error) {
	reach, err := failover.ParseSSHReachable(s.sshReachable)
	if err != nil {
		return failover.SwitchOptions{}, withCode(exitUsage, err)
	}
	if changed("running-updates-limit") && s.runningUpdatesLimit < 1 {
		return failover.SwitchOptions{}, withCode(exitUsage, fmt.Errorf("--running-updates-limit=%d: seconds, at least 1", s.runningUpdatesLimit))
	}
	if s.runningSecondsLimit < 1 {
		return failover.SwitchOptions{}, withCode(exitUsage, fmt.Errorf("--running-seconds-limit=%d: seconds, at least 1", s.runningSecondsLimit))
	}
	return failover.SwitchOptions{CheckOnly: s.checkOnly, SkipChangeMaster: s.skipChangeMaster, SkipDisableReadOnly: s.skipDisableReadOnly,
		OrigMasterSSH:       reach,
		RunningUpdatesLimit: time.Duration(s.runningUpdatesLimit) * time.Second,
		RunningSecondsLimit: time.Duration(s.runningSecondsLimit) * time.Second}, nil
}

// action puts the flags the command line set into a switch action.
func (s *switchFlags) action(a *api.Action, changed func(string) bool) {
	a.CheckOnly, a.SkipChangeMaster, a.SkipDisableReadOnly = s.checkOnly, s.skipChangeMaster, s.skipDisableReadOnly
	if changed("ssh-reachable") {
		v := s.sshReachable
		a.SSHReachable = &v
	}
	if changed("running-updates-limit") {
		a.RunningUpdatesLimit = s.runningUpdatesLimit
	}
	if changed("running-seconds-limit") {
		a.RunningSecondsLimit = s.runningSecondsLimit
	}
}

func newSwitchCmd() *cobra.Command {
	var c commonFlags
	var sw switchFlags
	var newHost, masterState string
	var newPort int
	var origIsNewSlave bool
	cmd := &cobra.Command{
		Use:   "switch (--app app1 | --local --conf app1.conf) [--new-master HOST:PORT] [--orig-master-is-new-slave] [--check-only]",
		Short: "Switch an alive master online (masterha_master_switch --master_state=alive)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if masterState == "dead" {
				return withCode(exitUsage, errors.New("--master-state=dead is a failover: use `mhactl failover`"))
			}
			changed := cmd.Flags().Changed
			opts, err := sw.options(changed)
			if err != nil {
				return err
			}
			if !c.local {
				name, err := c.appName()
				if err != nil {
					return err
				}
				a := api.Action{Kind: api.ActionSwitch, App: name,
					NewMaster: clusterRef(newHost, newPort), OrigMasterIsNewSlave: origIsNewSlave}
				sw.action(&a, changed)
				return runClusterAction(cmd, a)
			}
			app, err := c.load()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			_, err = failover.Switch(ctx, failover.Options{App: app, Out: cmd.OutOrStdout(), In: cmd.InOrStdin(),
				Yes: c.assumeYes(), NewMaster: hostPort(newHost, newPort), OrigMasterIsNewSlave: origIsNewSlave, Switch: opts})
			return pipelineCode(err)
		},
	}
	c.add(cmd)
	f := cmd.Flags()
	f.StringVar(&newHost, "new-master", "", "the new master, HOST:PORT; default: elected by MHA's rules")
	f.StringVar(&newHost, "new-master-host", "", "alias of --new-master")
	f.IntVar(&newPort, "new-master-port", 0, "port of --new-master-host (default 3306)")
	f.StringVar(&masterState, "master-state", "alive", "MHA's --master_state (alive)")
	f.BoolVar(&origIsNewSlave, "orig-master-is-new-slave", false, "make the old master a replica of the new one")
	sw.add(f)
	return cmd
}

func newRejoinCmd() *cobra.Command {
	var c commonFlags
	var host string
	cmd := &cobra.Command{
		Use:   "rejoin (--app app1 | --local --conf app1.conf) --host HOST:PORT",
		Short: "Make a repaired old master a replica of the new master, if it holds nothing the new master lacks",
		RunE: func(cmd *cobra.Command, args []string) error {
			if !c.local {
				name, err := c.appName()
				if err != nil {
					return err
				}
				return runClusterAction(cmd, api.Action{Kind: api.ActionRejoin, App: name, Host: host})
			}
			app, err := c.load()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			res, err := failover.Rejoin(ctx, failover.RejoinOptions{Options: failover.Options{App: app}, Host: host})
			if err != nil {
				if res != nil && len(res.Extra) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%s holds what the new master %s lacks:\n", res.Server, res.NewMaster)
					for _, e := range res.Extra {
						fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", e)
					}
				}
				return withCode(exitProblem, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s now replicates from %s (%s, from %s)\n", res.Server, res.NewMaster, res.Mode, res.From)
			return nil
		},
	}
	c.add(cmd)
	cmd.Flags().StringVar(&host, "host", "", "the old master, HOST:PORT")
	cmd.MarkFlagRequired("host")
	return cmd
}

func init() {
	rootCmd.AddCommand(newFailoverCmd(), newSwitchCmd(), newRejoinCmd())
}
