package main

// The commands that talk to a running mharaft cluster through its HTTP API:
// status, history, check-status, ack, pause, resume, members, server,
// version; and runClusterAction, which failover/switch/rejoin use without
// --local. Exit codes: EXIT_CODES.md.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mharaft/mharaft/api"
)

// clusterFlags are the persistent flags that say how to reach the cluster.
var clusterFlags struct {
	addrs     string
	tokenFile string
	caCert    string
	timeout   time.Duration
}

// pollInterval is how often runClusterAction reads the journal.
const pollInterval = 200 * time.Millisecond

func init() {
	pf := rootCmd.PersistentFlags()
	pf.StringVar(&clusterFlags.addrs, "addr", os.Getenv("MHACTL_ADDR"),
		"API of one or more managers, URL or host:port, comma separated (env MHACTL_ADDR); the leader is found automatically")
	pf.StringVar(&clusterFlags.tokenFile, "token-file", os.Getenv("MHACTL_TOKEN_FILE"),
		"file holding the cluster's API bearer token (env MHACTL_TOKEN_FILE)")
	pf.StringVar(&clusterFlags.caCert, "cacert", os.Getenv("MHACTL_CACERT"),
		"PEM CA certificate that signs the managers' TLS certificates (env MHACTL_CACERT)")
	pf.DurationVar(&clusterFlags.timeout, "timeout", 10*time.Second,
		"bound of each read request; actions wait until they finish (Ctrl-C stops waiting, not the action)")

	members := &cobra.Command{Use: "members", Short: "List, add or remove the managers of the Raft group"}
	members.AddCommand(newMembersListCmd(), newMembersAddCmd(), newMembersRemoveCmd())
	server := &cobra.Command{Use: "server", Short: "Add or remove a MySQL server of an application (masterha_conf_host)"}
	server.AddCommand(newServerAddCmd(), newServerRemoveCmd())

	rootCmd.AddCommand(
		newStatusCmd(), newHistoryCmd(), newCheckStatusCmd(),
		newAppActionCmd(api.ActionAck, "Acknowledge the last failover of an application, allowing the next automatic one"),
		newAppActionCmd(api.ActionPause, "Pause automatic failover of an application (monitoring goes on)"),
		newAppActionCmd(api.ActionResume, "Resume automatic failover of an application"),
		members, server, newVersionCmd(),
	)
}

// newClusterClient builds the API client from the flags. It does not
// contact anything yet.
func newClusterClient() (*api.Client, error) {
	var addrs []string
	for _, a := range strings.Split(clusterFlags.addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			// With --cacert the cluster speaks TLS: a bare host:port means https.
			addrs = append(addrs, api.BaseURL(a, clusterFlags.caCert != ""))
		}
	}
	if len(addrs) == 0 {
		return nil, withCode(exitUsage, errors.New("no cluster address: set --addr or MHACTL_ADDR (for example --addr 10.0.0.1:8080,10.0.0.2:8080)"))
	}
	c := &api.Client{Addrs: addrs, HTTP: &http.Client{}}
	if clusterFlags.tokenFile != "" {
		b, err := os.ReadFile(clusterFlags.tokenFile)
		if err != nil {
			return nil, withCode(exitInternal, fmt.Errorf("read token file: %w", err))
		}
		c.Token = strings.TrimSpace(string(b))
	}
	if clusterFlags.caCert != "" {
		pool, err := api.LoadCertPool(clusterFlags.caCert)
		if err != nil {
			return nil, withCode(exitInternal, err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		c.HTTP.Transport = tr
	}
	return c, nil
}

// readContext bounds one read by --timeout and by Ctrl-C.
func readContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, clusterFlags.timeout)
	return ctx, func() { cancel(); stop() }
}

// readStatus asks the cluster for its status, bounded by --timeout. A
// client that cannot be built comes back as an *exitError with its code.
func readStatus() (*api.Status, error) {
	c, err := newClusterClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := readContext()
	defer cancel()
	return c.Status(ctx)
}

// apiCode gives err the exit code EXIT_CODES.md documents. fallback is for
// errors without an HTTP answer that still reached a node (a read timing
// out, a connection lost during an action).
func apiCode(err error, fallback int) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err // already carries its code (a bad flag, an unreadable token file)
	}
	var ae *api.Error
	switch {
	case errors.Is(err, api.ErrUnreachable):
		return withCode(exitInternal, err)
	case errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden):
		return withCode(exitInternal, fmt.Errorf("%w (check --token-file / MHACTL_TOKEN_FILE)", err))
	case errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusConflict && ae.Status != http.StatusPreconditionFailed:
		return withCode(exitUsage, err)
	case errors.As(err, &ae):
		return withCode(exitProblem, err)
	}
	return withCode(fallback, err)
}

func newStatusCmd() *cobra.Command {
	var out outputFormat
	var app string
	cmd := &cobra.Command{
		Use:   "status [--app NAME]",
		Short: "Show the managers (Raft role, term, last contact) and each application's replication tree, lock and journal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := readStatus()
			if err != nil {
				return apiCode(err, exitInternal)
			}
			if app != "" {
				a := st.App(app)
				if a == nil {
					return withCode(exitUsage, fmt.Errorf("unknown application %q", app))
				}
				st.Apps = []api.AppStatus{*a}
			}
			if out == outputJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	out.add(cmd)
	cmd.Flags().StringVar(&app, "app", "", "show only this application")
	return cmd
}

func newHistoryCmd() *cobra.Command {
	var out outputFormat
	var app string
	cmd := &cobra.Command{
		Use:   "history [--app NAME]",
		Short: "List finished failovers and switches, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClusterClient()
			if err != nil {
				return err
			}
			ctx, cancel := readContext()
			defer cancel()
			h, err := c.History(ctx, app)
			if err != nil {
				return apiCode(err, exitInternal)
			}
			if h == nil {
				h = []api.HistoryEntry{}
			}
			if out == outputJSON {
				return printJSON(cmd.OutOrStdout(), h)
			}
			printHistory(cmd.OutOrStdout(), h)
			return nil
		},
	}
	out.add(cmd)
	cmd.Flags().StringVar(&app, "app", "", "only this application")
	return cmd
}

// newAppActionCmd is ack, pause and resume: an action on one application.
func newAppActionCmd(kind, short string) *cobra.Command {
	var out outputFormat
	var app, reason string
	cmd := &cobra.Command{
		Use:   kind + " --app NAME [--reason TEXT]",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClusterAction(cmd, api.Action{Kind: kind, App: app, Reason: reason})
		},
	}
	out.add(cmd)
	cmd.Flags().StringVar(&app, "app", "", "the application (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept in the cluster's log")
	cmd.MarkFlagRequired("app")
	return cmd
}

func newMembersListCmd() *cobra.Command {
	var out outputFormat
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the managers with their Raft role, voter flag, liveness and last contact",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := readStatus()
			if err != nil {
				return apiCode(err, exitInternal)
			}
			if out == outputJSON {
				return printJSON(cmd.OutOrStdout(), st.Managers)
			}
			printManagers(cmd.OutOrStdout(), st)
			return nil
		},
	}
	out.add(cmd)
	return cmd
}

func newMembersAddCmd() *cobra.Command {
	var out outputFormat
	var reason string
	var force bool
	cmd := &cobra.Command{
		Use:   "add ID RAFT_ADDR",
		Short: "Add a manager to the Raft group as a voter (start its mhanode first, with --rejoin)",
		Long: "Add a manager to the Raft group as a voter. Its mhanode must already run at RAFT_ADDR, started with --rejoin\n" +
			"(a new manager, or a removed one that was restarted); a removed manager that kept running needs no restart.\n" +
			"The leader refuses an address where nothing answers unless --force.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClusterAction(cmd, api.Action{Kind: api.ActionMemberAdd, MemberID: args[0], MemberAddr: args[1], Force: force, Reason: reason})
		},
	}
	out.add(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept in the cluster's log")
	cmd.Flags().BoolVar(&force, "force", false, "add the voter even if nothing answers at RAFT_ADDR (it then counts toward the majority without voting)")
	return cmd
}

func newMembersRemoveCmd() *cobra.Command {
	var out outputFormat
	var reason string
	var force bool
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a manager from the Raft group (the leader hands its leadership over first)",
		Long: "Remove a manager from the Raft group. Removing the leader makes it hand the leadership over first; the\n" +
			"new leader removes it. A removal that leaves fewer than 3 voters is refused unless --force. The removed\n" +
			"mhanode keeps running, reports \"removed\" on /healthz and serves no status; bring it back with\n" +
			"`mhactl members add ID RAFT_ADDR` (after restarting it with --rejoin if it was restarted).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClusterAction(cmd, api.Action{Kind: api.ActionMemberRemove, MemberID: args[0], Force: force, Reason: reason})
		},
	}
	out.add(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept in the cluster's log")
	cmd.Flags().BoolVar(&force, "force", false, "remove it even if fewer than 3 voters are left (losing one more manager then stops the group)")
	return cmd
}

func newServerAddCmd() *cobra.Command {
	var out outputFormat
	var app, reason string
	var s api.ServerSpec
	cmd := &cobra.Command{
		Use:   "add --app NAME --name server4 --hostname HOST --port PORT [--candidate-master|--no-master]",
		Short: "Add a MySQL server to an application",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClusterAction(cmd, api.Action{Kind: api.ActionServerAdd, App: app, Server: &s, Reason: reason})
		},
	}
	out.add(cmd)
	f := cmd.Flags()
	f.StringVar(&app, "app", "", "the application (required)")
	f.StringVar(&s.Name, "name", "", "the server's name in the configuration, e.g. server4 (required)")
	f.StringVar(&s.Hostname, "hostname", "", "host name or IP (required)")
	f.IntVar(&s.Port, "port", 3306, "MySQL port")
	f.BoolVar(&s.CandidateMaster, "candidate-master", false, "prefer this server as new master")
	f.BoolVar(&s.NoMaster, "no-master", false, "never promote this server")
	f.StringVar(&s.Datacenter, "datacenter", "", "the server's datacenter")
	f.StringVar(&reason, "reason", "", "why, kept in the cluster's log")
	for _, n := range []string{"app", "name", "hostname"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newServerRemoveCmd() *cobra.Command {
	var out outputFormat
	var app, host, reason string
	cmd := &cobra.Command{
		Use:   "remove --app NAME --host SERVER",
		Short: "Remove a server (not the master) from an application",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClusterAction(cmd, api.Action{Kind: api.ActionServerRemove, App: app, Host: host, Reason: reason})
		},
	}
	out.add(cmd)
	cmd.Flags().StringVar(&app, "app", "", "the application (required)")
	cmd.Flags().StringVar(&host, "host", "", "the server: its name or HOST:PORT (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept in the cluster's log")
	cmd.MarkFlagRequired("app")
	cmd.MarkFlagRequired("host")
	return cmd
}

func newVersionCmd() *cobra.Command {
	var out outputFormat
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print mhactl's version and, with --addr, each manager's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := versionInfo{Client: api.BuildVersion}
			if clusterFlags.addrs != "" {
				c, err := newClusterClient()
				if err != nil {
					return err
				}
				for _, addr := range c.Addrs {
					ctx, cancel := readContext()
					h, err := c.Health(ctx, addr)
					cancel()
					nv := nodeVersion{Addr: addr}
					if err != nil {
						nv.Error = err.Error()
					} else {
						nv.Version, nv.Leader = h.Version, h.Leader
					}
					v.Nodes = append(v.Nodes, nv)
				}
			}
			if out == outputJSON {
				return printJSON(cmd.OutOrStdout(), v)
			}
			printVersion(cmd.OutOrStdout(), v)
			return nil
		},
	}
	out.add(cmd)
	return cmd
}

// runClusterAction sends a through the cluster's API (the leader runs it;
// a follower forwards it), prints each new journal line of a.App every
// 200 ms while it runs, then prints the result. Ctrl-C stops waiting; the
// action itself goes on on the leader. failover, switch and rejoin call
// it when they run without --local.
func runClusterAction(cmd *cobra.Command, a api.Action) error {
	c, err := newClusterClient()
	if err != nil {
		return err
	}
	jsonOut := outputOf(cmd) == outputJSON
	progress := cmd.OutOrStdout()
	if jsonOut {
		progress = cmd.ErrOrStderr()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// Journal lines present before the action are not news.
	jw := journalWatcher{c: c, app: a.App, seen: map[string]bool{}}
	jw.poll(ctx, nil)

	type answer struct {
		res *api.ActionResult
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := c.Do(ctx, a)
		done <- answer{res, err}
	}()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			jw.poll(ctx, progress)
		case ans := <-done:
			if ans.err != nil {
				if ctx.Err() != nil {
					return withCode(exitProblem, fmt.Errorf("interrupted: stopped waiting for %s; it goes on on the leader (follow it with mhactl status --app %s)", a.Kind, a.App))
				}
				return apiCode(ans.err, exitProblem)
			}
			jw.poll(context.Background(), progress)
			if jsonOut {
				if err := printJSON(cmd.OutOrStdout(), ans.res); err != nil {
					return err
				}
			} else {
				printResult(cmd.OutOrStdout(), a, ans.res)
			}
			if !ans.res.OK {
				return withCode(exitProblem, fmt.Errorf("%s %s failed: %s", a.Kind, a.App, ans.res.Message))
			}
			return nil
		}
	}
}

// journalWatcher prints the journal lines of an app it has not printed yet.
type journalWatcher struct {
	c      *api.Client
	app    string
	seen   map[string]bool
	warned bool
}

// poll reads the app's journal once; with w nil it only marks lines seen.
func (j *journalWatcher) poll(ctx context.Context, w interface{ Write([]byte) (int, error) }) {
	if j.app == "" {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	app, err := j.c.App(pctx, j.app)
	if err != nil {
		if w != nil && !j.warned && ctx.Err() == nil {
			fmt.Fprintf(w, "(progress not available: %v)\n", err)
			j.warned = true
		}
		return
	}
	for _, e := range app.Journal {
		key := fmt.Sprintf("%d|%s|%s|%s|%s", e.Epoch, e.Phase, e.Status, e.Detail, e.At.Format(time.RFC3339Nano))
		if j.seen[key] {
			continue
		}
		j.seen[key] = true
		if w != nil {
			printJournalLine(w, e)
		}
	}
}

// masterha_check_status's exit codes (MHA::ManagerConst), see EXIT_CODES.md.
const (
	stRunning             = 0
	stNotRunning          = 2
	stPartiallyRunning    = 3
	stInitializingMonitor = 10
	stPingFailing         = 20
	stPingFailed          = 21
	stConfigError         = 31
	stFailoverRunning     = 50
	stFailoverError       = 51
)

// appHealth is the answer of check-status.
type appHealth struct {
	App    string `json:"app"`
	Code   int    `json:"code"`
	Status string `json:"status"` // MHA's name: PING_OK, NOT_RUNNING, ...
	Master string `json:"master,omitempty"`
	Leader string `json:"leader,omitempty"`
	Detail string `json:"detail,omitempty"`
	state  string // the table's "is running" when the code's default does not fit
}

// classifyApp maps the cluster's view of app to masterha_check_status's
// codes. The first matching rule wins.
func classifyApp(st *api.Status, name string) appHealth {
	h := appHealth{App: name, Leader: st.Leader}
	app := st.App(name)
	switch {
	case app == nil:
		h.Code, h.Status, h.Detail = stConfigError, "CONFIG_ERROR", "the cluster does not know this application"
		return h
	case st.Leader == "":
		h.Code, h.Status, h.Detail = stPartiallyRunning, "PARTIALLY_RUNNING", "managers answer but have no raft leader: nothing can fail over"
	case app.Lock != nil:
		h.Code, h.Status = stFailoverRunning, "FAILOVER_RUNNING"
		h.Detail = fmt.Sprintf("%s epoch %d held by %s since %s", app.Lock.Kind, app.Lock.Epoch, app.Lock.Holder, app.Lock.Started.Format(time.RFC3339))
	case app.Unfinished:
		h.Code, h.Status, h.Detail = stFailoverError, "FAILOVER_ERROR", "the last failover's journal is unfinished"
	case app.Paused:
		h.Code, h.Status, h.Detail = stPartiallyRunning, "PARTIALLY_RUNNING", "automatic failover is paused (mhactl resume)"
	case app.AutoRetry != nil && app.AutoRetry.Halted:
		h.Code, h.Status, h.Detail = stFailoverError, "FAILOVER_ERROR", "automatic failover halted after refused attempts: "+app.AutoRetry.HaltReason+" (fix it, then mhactl ack)"
	case masterRefusesLogin(app) != nil:
		// Alive (no failover for it), but the managers are blind to it:
		// their credentials are configuration, hence CONFIG_ERROR.
		m := masterRefusesLogin(app)
		h.Code, h.Status, h.state = stConfigError, "CONFIG_ERROR", "is running but cannot log in to its master"
		h.Detail = fmt.Sprintf("the master %s refuses the manager's login: %s (fix the password or grants of the manager's user on it, or user=/password= in the managers' configuration)",
			m.Name, orDash(m.HealthDetail))
	case app.Verdict == "" || app.Verdict == "NoQuorum":
		h.Code, h.Status, h.Detail = stInitializingMonitor, "INITIALIZING_MONITOR", "no verdict yet ("+orDash(app.Verdict)+")"
	case app.Verdict == "Healthy":
		h.Code, h.Status = stRunning, "PING_OK"
	case app.Verdict == "UnreachableMaster":
		h.Code, h.Status, h.Detail = stPingFailing, "PING_FAILING", "some managers cannot reach the master"
	case strings.HasPrefix(app.Verdict, "DeadMaster"):
		h.Code, h.Status, h.Detail = stPingFailed, "PING_FAILED", app.Verdict
	default:
		h.Code, h.Status, h.Detail = exitProblem, "UNKNOWN", "unknown verdict "+app.Verdict
	}
	h.Master = app.Master
	if s := app.Server(app.Master); s != nil {
		h.Master = s.Name + "(" + s.Addr + ")"
	}
	return h
}

// masterRefusesLogin is the app's master when it refuses a manager's
// login (health auth-error), else nil.
func masterRefusesLogin(app *api.AppStatus) *api.ServerStatus {
	if s := app.Server(app.Master); s != nil && s.Health == api.HealthAuthError {
		return s
	}
	return nil
}

func newCheckStatusCmd() *cobra.Command {
	var out outputFormat
	var app string
	cmd := &cobra.Command{
		Use:   "check-status --app NAME",
		Short: "Exit 0 when the application is monitored and healthy, else masterha_check_status's codes (EXIT_CODES.md)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var h appHealth
			st, err := readStatus()
			var ee *exitError
			var ae *api.Error
			switch {
			case errors.As(err, &ee):
				return err
			case errors.Is(err, api.ErrUnreachable):
				h = appHealth{App: app, Code: stNotRunning, Status: "NOT_RUNNING", Detail: err.Error()}
			case errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden):
				return apiCode(err, exitInternal)
			case err != nil:
				h = appHealth{App: app, Code: exitProblem, Status: "ERROR", Detail: err.Error()}
			default:
				h = classifyApp(st, app)
			}
			if out == outputJSON {
				if err := printJSON(cmd.OutOrStdout(), h); err != nil {
					return err
				}
			} else {
				printAppHealth(cmd.OutOrStdout(), h)
			}
			if h.Code != stRunning {
				return withCode(h.Code, fmt.Errorf("%s: %d:%s", app, h.Code, h.Status))
			}
			return nil
		},
	}
	out.add(cmd)
	cmd.Flags().StringVar(&app, "app", "", "the application (required)")
	cmd.MarkFlagRequired("app")
	return cmd
}
