package main

// Printers of the cluster commands, etcdctl -w style: -o table (default,
// for people) or -o json (for scripts; the API's own JSON, indented).

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mharaft/mharaft/api"
)

// outputFormat is the value of -o/--output.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
)

func (o *outputFormat) String() string {
	if *o == "" {
		return string(outputTable)
	}
	return string(*o)
}

func (o *outputFormat) Set(v string) error {
	switch outputFormat(v) {
	case outputTable, outputJSON:
		*o = outputFormat(v)
		return nil
	}
	return fmt.Errorf("unknown output format %q (table or json)", v)
}

func (o *outputFormat) Type() string { return "format" }

// add registers -o/--output on cmd.
func (o *outputFormat) add(cmd *cobra.Command) {
	*o = outputTable
	cmd.Flags().VarP(o, "output", "o", "output format: table or json")
}

// outputOf reads -o of any command; table when it has none.
func outputOf(cmd *cobra.Command) outputFormat {
	if f := cmd.Flags().Lookup("output"); f != nil && f.Value.String() == string(outputJSON) {
		return outputJSON
	}
	return outputTable
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return withCode(exitInternal, fmt.Errorf("encode JSON output: %w", err))
	}
	return nil
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printStatus(w io.Writer, st *api.Status) {
	leader := st.Leader
	if leader == "" {
		leader = "NONE (no raft leader: actions are refused)"
	}
	fmt.Fprintf(w, "Cluster: answered by %s, leader %s, term %d\n\n", orDash(st.Node), leader, st.Term)
	printManagers(w, st)
	for i := range st.Apps {
		fmt.Fprintln(w)
		printApp(w, &st.Apps[i])
	}
}

func printManagers(w io.Writer, st *api.Status) {
	t := newTable(w)
	fmt.Fprintln(t, "MANAGER\tROLE\tVOTER\tALIVE\tDATACENTER\tRAFT ADDR\tAPI ADDR\tLAST CONTACT")
	for _, m := range st.Managers {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, orDash(m.Role), yesNo(m.Voter), yesNo(m.Alive),
			orDash(m.Datacenter), orDash(m.RaftAddr), orDash(m.APIAddr), orDash(m.LastContact))
	}
	t.Flush()
}

// printApp draws the application as MHA does in its From:/To: reports,
//
//	server1(127.0.0.1:3306) (current master)
//	 +--server2(127.0.0.1:3307) replica, io Yes, sql Yes, lag 0s
//
// then one table row per server (AGE: how old the leader's discovery it
// shows is; a stale row's HEALTH is "stale" and the line under the table
// says why), then the failover lock and an unfinished journal.
func printApp(w io.Writer, a *api.AppStatus) {
	monitoring := "automatic failover on"
	if a.Paused {
		monitoring = "automatic failover PAUSED"
	}
	if r := a.AutoRetry; r != nil && r.Halted {
		monitoring = "automatic failover HALTED after refusals (mhactl ack)"
	} else if r != nil {
		monitoring = fmt.Sprintf("automatic failover refused %d time(s), next attempt %s", r.Refusals, r.NextAttempt.Local().Format("15:04:05"))
	}
	last := "never"
	if a.LastFailover != nil {
		last = a.LastFailover.Local().Format("2006-01-02 15:04:05")
		if a.Acked {
			last += " (acknowledged)"
		} else {
			last += " (not acknowledged)"
		}
	}
	fmt.Fprintf(w, "Application %s: master %s, verdict %s, %s, last failover %s\n", a.Name, orDash(a.Master), orDash(a.Verdict), monitoring, last)
	for _, line := range appTree(a) {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	t := newTable(w)
	fmt.Fprintln(t, "SERVER\tADDR\tROLE\tHEALTH\tAGE\tREAD_ONLY\tIO\tSQL\tLAG\tBINLOG\tREAD\tEXEC\tGTID")
	for _, s := range a.Servers {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Addr, orDash(s.Role), health(&s), age(s.AgeSeconds), yesNo(s.ReadOnly),
			orDash(s.IOThread), orDash(s.SQLThread), lag(s.LagSeconds), orDash(s.BinlogPos), orDash(s.ReadPos), orDash(s.ExecPos), orDash(s.GTID))
	}
	t.Flush()
	printHealthDetails(w, a)
	if a.Lock != nil || (a.Unfinished && len(a.Journal) > 0) {
		fmt.Fprintln(w)
	}
	if l := a.Lock; l != nil {
		fmt.Fprintf(w, "Failover lock: %s epoch %d held by %s since %s\n", l.Kind, l.Epoch, l.Holder, l.Started.Local().Format("2006-01-02 15:04:05"))
	}
	if a.Unfinished && len(a.Journal) > 0 {
		fmt.Fprintf(w, "Unfinished journal (epoch %d):\n", a.Journal[len(a.Journal)-1].Epoch)
		for _, e := range a.Journal {
			printJournalLine(w, e)
		}
	}
}

// appTree returns the lines of the replication tree: the master first with
// its replicas below it (recursively), then every server that hangs from
// nothing the application knows.
func appTree(a *api.AppStatus) []string {
	var lines []string
	printed := map[string]bool{}
	var walk func(s *api.ServerStatus, depth int)
	walk = func(s *api.ServerStatus, depth int) {
		if printed[s.Name] {
			return
		}
		printed[s.Name] = true
		line := fmt.Sprintf("%s(%s)", s.Name, s.Addr)
		if depth > 0 {
			line = strings.Repeat(" ", 4*(depth-1)) + " +--" + line
		}
		lines = append(lines, line+" "+treeNote(a, s))
		for i := range a.Servers {
			c := &a.Servers[i]
			if c.ReplicatingFrom != "" && (c.ReplicatingFrom == s.Name || c.ReplicatingFrom == s.Addr) {
				walk(c, depth+1)
			}
		}
	}
	if m := a.Server(a.Master); m != nil {
		walk(m, 0)
	}
	for i := range a.Servers {
		walk(&a.Servers[i], 0)
	}
	return lines
}

func treeNote(a *api.AppStatus, s *api.ServerStatus) string {
	var notes []string
	if s.Name == a.Master || s.Addr == a.Master {
		notes = append(notes, "(current master)")
	} else {
		role := orDash(s.Role)
		if s.ReplicatingFrom != "" && a.Server(s.ReplicatingFrom) == nil {
			role += " of " + s.ReplicatingFrom + " (not in this application)"
		}
		notes = append(notes, role)
	}
	if s.IOThread != "" || s.SQLThread != "" {
		notes = append(notes, "io "+orDash(s.IOThread)+", sql "+orDash(s.SQLThread))
	}
	if s.LagSeconds != nil {
		notes = append(notes, "lag "+lag(s.LagSeconds))
	}
	if h := health(s); h != "ok" {
		notes = append(notes, strings.ToUpper(h))
	}
	return strings.Join(notes, ", ")
}

// health is one word about a server: ok, auth-error (it refuses a
// manager's login), unknown (not discovered yet), stale (the row is not
// the server's current state), unreachable, error, degraded. A manager
// older than ServerStatus.Health sends none.
func health(s *api.ServerStatus) string {
	switch {
	case s.Health == api.HealthAuthError, s.Health == api.HealthUnknown, s.Health == api.HealthStale, s.Health == api.HealthDiverged:
		return s.Health
	case s.Stale:
		return api.HealthStale
	case !s.Reachable:
		return "unreachable"
	case s.Error != "":
		return "error"
	case s.IOThread != "" && s.IOThread != "Yes", s.SQLThread != "" && s.SQLThread != "Yes":
		return "degraded"
	}
	return "ok"
}

// printHealthDetails prints, under the servers table, why each server
// that is not ok is so, e.g.
//
//	server2: auth-error: connect to server2(127.0.0.1:3307) as mha: Error 1045 (28000): Access denied for user 'mha'@'localhost' (using password: YES)
func printHealthDetails(w io.Writer, a *api.AppStatus) {
	first := true
	for _, s := range a.Servers {
		if s.HealthDetail == "" {
			continue
		}
		if first {
			fmt.Fprintln(w)
			first = false
		}
		what := health(&s)
		if what == api.HealthAuthError {
			what += " (cannot log in)"
		}
		fmt.Fprintf(w, "%s: %s: %s\n", s.Name, what, s.HealthDetail)
	}
}

// age prints the age of a row: 0.3s, 12s, 3m5s; "-" when never discovered.
func age(secs *float64) string {
	if secs == nil {
		return "-"
	}
	d := time.Duration(*secs * float64(time.Second))
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func lag(l *int64) string {
	if l == nil {
		return "-"
	}
	return fmt.Sprintf("%ds", *l)
}

func printJournalLine(w io.Writer, e api.JournalEntry) {
	at := "-"
	if !e.At.IsZero() {
		at = e.At.Local().Format("15:04:05.000")
	}
	fmt.Fprintf(w, "  %s  %-24s %-8s %s\n", at, e.Phase, e.Status, e.Detail)
}

func printHistory(w io.Writer, h []api.HistoryEntry) {
	if len(h) == 0 {
		fmt.Fprintln(w, "no failover or switch yet")
		return
	}
	t := newTable(w)
	fmt.Fprintln(t, "APP\tEPOCH\tKIND\tFROM\tTO\tSTARTED\tDURATION\tRESULT\tSUMMARY")
	for _, e := range h {
		from := e.DeadMaster
		if from == "" {
			from = e.OldMaster
		}
		dur := "-"
		if !e.Finished.IsZero() {
			dur = e.Finished.Sub(e.Started).Round(time.Millisecond).String()
		}
		fmt.Fprintf(t, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.App, e.Epoch, e.Kind, orDash(from), orDash(e.NewMaster),
			e.Started.Local().Format("2006-01-02 15:04:05"), dur, e.Result, e.Summary)
	}
	t.Flush()
}

func printResult(w io.Writer, a api.Action, r *api.ActionResult) {
	what := a.Kind
	if a.App != "" {
		what += " " + a.App
	}
	state := "OK"
	if !r.OK {
		state = "FAILED"
	}
	fmt.Fprintf(w, "%s: %s", what, state)
	if r.Epoch != 0 {
		fmt.Fprintf(w, " (epoch %d)", r.Epoch)
	}
	if r.Message != "" {
		fmt.Fprintf(w, ": %s", r.Message)
	}
	fmt.Fprintln(w)
	if len(r.Report) > 0 {
		var v any
		if json.Unmarshal(r.Report, &v) == nil {
			if s, ok := v.(string); ok {
				fmt.Fprintln(w, s)
				return
			}
		}
		printJSON(w, r.Report)
	}
}

// versionInfo is the answer of mhactl version.
type versionInfo struct {
	Client string        `json:"client"`
	Nodes  []nodeVersion `json:"nodes,omitempty"`
}

type nodeVersion struct {
	Addr    string `json:"addr"`
	Version string `json:"version,omitempty"`
	Leader  bool   `json:"leader"`
	Error   string `json:"error,omitempty"`
}

func printVersion(w io.Writer, v versionInfo) {
	fmt.Fprintf(w, "mhactl %s (%s)\n", v.Client, runtime.Version())
	for _, n := range v.Nodes {
		if n.Error != "" {
			fmt.Fprintf(w, "%s: unreachable: %s\n", n.Addr, n.Error)
			continue
		}
		role := "follower"
		if n.Leader {
			role = "leader"
		}
		fmt.Fprintf(w, "%s: mhanode %s (%s)\n", n.Addr, n.Version, role)
	}
}

// printAppHealth prints check-status the way masterha_check_status does:
// "app1 is running(0:PING_OK), master:server1(127.0.0.1:3306)".
func printAppHealth(w io.Writer, h appHealth) {
	state := "is running"
	switch {
	case h.state != "":
		state = h.state
	case h.Code == stNotRunning:
		state = "is stopped"
	case h.Code == stConfigError:
		state = "is not configured"
	case h.Code == exitProblem:
		state = "status is unknown"
	}
	fmt.Fprintf(w, "%s %s(%d:%s)", h.App, state, h.Code, h.Status)
	if h.Master != "" {
		fmt.Fprintf(w, ", master:%s", h.Master)
	}
	if h.Detail != "" {
		fmt.Fprintf(w, ": %s", h.Detail)
	}
	fmt.Fprintln(w)
}
