package failover

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/mharaft/mharaft/config"
)

// Sentinel errors of the pipelines.
var (
	// ErrMayNotAct: the run may no longer act: its journal (Journal.Begin
	// or Done) or its Guard refused, as for a deposed leader. (Not
	// consensus.ErrNotLeader: mhactl --local runs pipelines without Raft.)
	ErrMayNotAct = errors.New("this run may no longer act: its journal or its guard refused")
	// ErrAborted: the operator did not confirm.
	ErrAborted = errors.New("not confirmed by the operator")
	// ErrRefused: a precondition failed; nothing was changed.
	ErrRefused = errors.New("refused")
	// ErrUnsafeResume: the previous run stopped where repeating a step
	// could apply events twice; manual recovery is needed.
	ErrUnsafeResume = errors.New("unsafe to resume")
	// ErrHookFailed: a hook's exit code aborts the pipeline.
	ErrHookFailed = errors.New("hook failed")
)

// Options configure one pipeline run.
type Options struct {
	App *config.App
	// Journal records the phases; nil means no journal.
	Journal Journal
	// Out receives the plan, progress lines and the report (nil: discarded).
	Out io.Writer
	// In answers "Proceed? (yes/NO)" unless Yes.
	In  io.Reader
	Yes bool
	// NewMaster is an explicit new master (name, host:port or ip:port).
	NewMaster string
	// OrigMasterIsNewSlave (switch): make the old master a replica of the new one.
	OrigMasterIsNewSlave bool
	// Switch: the online switch's other MHA flags (switch.go).
	Switch SwitchOptions
	// DeadJudgedUnreachable (dead-master failover): the managers' quorum
	// verdict judged the dead master unreachable (an automatic failover,
	// not a resume), so phase 1 does not wait for its connect beyond the
	// other servers' (connectJudged).
	DeadJudgedUnreachable bool
	// Recovery moves binlog events (dead-master failover only); nil uses
	// the binlog package.
	Recovery LogRecovery
	// WaitTimeout bounds every wait for replication (default 5 minutes).
	WaitTimeout time.Duration
	// Resume is the progress of an interrupted earlier run (from its
	// journal); its completed phases are skipped and its plan reused.
	Resume *Progress
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// Guard is asked before every new connection to a server the run may
	// change and before every hook (except report_script); an error stops
	// the run with ErrMayNotAct. nil (mhactl --local): no check, but the
	// connections are still fenced (see doc.go, "Fencing").
	Guard Guard
	// FenceWait bounds the wait for a killed connection of an earlier
	// actor to end (default 1 minute).
	FenceWait time.Duration
	// IgnoreBinlogServerError (dead-master failover; MHA's
	// --ignore_binlog_server_error): go on when the dead master's binlog
	// could not be read and no binlog server ([binlogN]) gave the tail
	// either, reporting the tail lost. Without it such a failover stops in
	// phase 2, before any replica is changed: binlog servers are
	// configured precisely so that the tail is not lost.
	IgnoreBinlogServerError bool
	// ReplicaStartTimeout bounds the wait, after START SLAVE, for the IO
	// thread to connect and the SQL thread to run (default 15 s).
	ReplicaStartTimeout time.Duration
}

func (o *Options) replicaStartTimeout() time.Duration {
	if o.ReplicaStartTimeout > 0 {
		return o.ReplicaStartTimeout
	}
	return 15 * time.Second
}

func (o *Options) waitTimeout() time.Duration {
	if o.WaitTimeout > 0 {
		return o.WaitTimeout
	}
	return 5 * time.Minute
}

func (o *Options) connectTimeout() time.Duration {
	if o.App.ConnectTimeout > 0 {
		return o.App.ConnectTimeout
	}
	return 2 * time.Second
}

// run is the state shared by the phases of one pipeline.
type run struct {
	opts    Options
	journal Journal
	out     io.Writer
	hooks   *Hooks
	plan    *Plan
	rep     *Report
	done    map[string]bool
	nodes   map[string]*node // alive servers by name
	diffs   map[string]*diffFuture
	tail    *tailFuture
	mu      sync.Mutex
	// restoreMu serialises restoring missing saved files (savedFilesFor).
	restoreMu sync.Mutex

	// Dead-master failover: its SSH dial, and its fence (held until the
	// run ends) with the connection pool it came from.
	deadSSH   *sshDial
	deadFence *fence
	deadNode  *node

	// fence fences every connection of the run (see doc.go, "Fencing").
	fence *fencing
}

func newRun(opts Options, kind string) *run {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	r := &run{opts: opts, journal: opts.Journal, out: opts.Out, nodes: map[string]*node{}, done: map[string]bool{},
		diffs: map[string]*diffFuture{}}
	if r.journal == nil {
		r.journal = nopJournal{}
	}
	if r.out == nil {
		r.out = io.Discard
	}
	// Phases write from several goroutines (per-replica work, background
	// saves, fencing of parallel connections): one write at a time.
	r.out = &lockedWriter{w: r.out}
	start := now()
	r.plan = &Plan{Kind: kind, App: opts.App.Name, ID: start.Format("20060102150405"), Started: start}
	if opts.Resume != nil {
		for p := range opts.Resume.Completed {
			r.done[p] = true
		}
		if opts.Resume.Plan != nil {
			r.plan = opts.Resume.Plan
		}
	}
	r.rep = &Report{Kind: kind, App: opts.App.Name, Started: start, Plan: r.plan}
	r.hooks = &Hooks{App: opts.App, Log: r.logf}
	r.fence = newFencing(opts.App.Name, opts.Guard, opts.FenceWait, opts.connectTimeout(), r.logf)
	return r
}

func (r *run) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.out, "%s - [info] %s\n", time.Now().Format("Mon Jan _2 15:04:05.000 2006"), fmt.Sprintf(format, args...))
}

// addf adds a line to the report (safe from goroutines).
func (r *run) addf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.addf(format, args...)
}

// phase runs fn as a journaled phase: Begin before, Done after. A phase
// completed by an earlier run (Resume) is skipped.
func (r *run) phase(ctx context.Context, name string, fn func() error) error {
	if r.done[name] {
		r.logf("* %s: completed by an earlier run, skipped.", name)
		return nil
	}
	if err := r.journal.Begin(ctx, name, r.plan); err != nil {
		return fmt.Errorf("begin %s: %w: %v", name, ErrMayNotAct, err)
	}
	r.logf("* %s..", name)
	start := time.Now()
	err := fn()
	r.rep.phase(name, time.Since(start))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r.done[name] = true
	r.logf("* %s completed (%.3f s).", name, time.Since(start).Seconds())
	if err := r.journal.Done(ctx, name, r.plan); err != nil {
		return fmt.Errorf("record end of %s: %w: %v", name, ErrMayNotAct, err)
	}
	return nil
}

// confirm asks question on In unless Yes; only an answer starting with y
// proceeds (MHA's rule).
func (r *run) confirm(question string) error {
	if r.opts.Yes {
		return nil
	}
	fmt.Fprintf(r.out, "%s (yes/NO): ", question)
	if r.opts.In == nil {
		return fmt.Errorf("%w: no input to confirm on and --yes not given", ErrAborted)
	}
	line, _ := bufio.NewReader(r.opts.In).ReadString('\n')
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "y") {
		return ErrAborted
	}
	return nil
}

// connectAll connects to every configured server in parallel, each
// connection fenced (so on a resume every reachable server is fenced
// before its state is read). It returns the errors of the servers it could
// not reach.
func (r *run) connectAll(ctx context.Context) map[string]error {
	return r.connectServers(ctx, func(*config.Server) bool { return true })
}

// connectServers is connectAll for the servers that want returns true for.
func (r *run) connectServers(ctx context.Context, want func(*config.Server) bool) map[string]error {
	type res struct {
		s   *config.Server
		n   *node
		err error
	}
	var servers []*config.Server
	for _, s := range r.opts.App.Servers {
		if want(s) {
			servers = append(servers, s)
		}
	}
	ch := make(chan res, len(servers))
	for _, s := range servers {
		go func(s *config.Server) {
			n, err := connect(ctx, s, r.opts.connectTimeout(), r.fence)
			ch <- res{s, n, err}
		}(s)
	}
	errs := map[string]error{}
	for range servers {
		x := <-ch
		if x.err != nil {
			errs[x.s.Name] = x.err
			continue
		}
		r.nodes[x.s.Name] = x.n
	}
	return errs
}

func (r *run) closeAll() {
	for _, n := range r.nodes {
		n.close()
	}
}

// guardRefusal returns the first refusal (ErrMayNotAct) among connect errors.
func guardRefusal(errs map[string]error) error {
	for _, e := range errs {
		if errors.Is(e, ErrMayNotAct) {
			return e
		}
	}
	return nil
}

// parallel runs fn for every node and returns the errors by server name.
func parallel(nodes []*node, fn func(n *node) error) map[string]error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := map[string]error{}
	for _, n := range nodes {
		wg.Add(1)
		go func(n *node) {
			defer wg.Done()
			if err := fn(n); err != nil {
				mu.Lock()
				errs[n.srv.Name] = err
				mu.Unlock()
			}
		}(n)
	}
	wg.Wait()
	return errs
}

// runHook runs a configured hook and records it in the report.
// Hooks cannot be fenced through MySQL: the guard is asked right before
// each one (report_script only reports, it is not asked).
func (r *run) runHook(ctx context.Context, script string, args []Arg) (HookResult, error) {
	if script != r.opts.App.ReportScript {
		if err := r.fence.mayAct(ctx, "run "+script); err != nil {
			return HookResult{Script: script, Command: Printable(script, args), ExitCode: -1}, err
		}
	}
	res, err := r.hooks.Run(ctx, script, args)
	r.mu.Lock()
	r.rep.Hooks = append(r.rep.Hooks, res)
	r.mu.Unlock()
	return res, err
}

// finish completes the report: timing, JSON file in the workdir, print,
// report_script.
func (r *run) finish(ctx context.Context, err error, newSlaves []string) *Report {
	r.rep.Finished = time.Now()
	r.rep.Total = r.rep.Finished.Sub(r.rep.Started).Seconds()
	r.rep.OK = err == nil
	r.rep.OldMaster = r.plan.OldMaster
	r.rep.NewMaster = r.plan.NewMaster
	old := r.opts.App.Server(r.plan.OldMaster)
	oldName := r.plan.OldMaster
	if old != nil {
		oldName = old.String()
	}
	verb := "MySQL Master failover"
	if r.rep.Kind == "switch" {
		verb = "MySQL Master online switch"
	}
	r.rep.Subject = fmt.Sprintf("%s: %s %s", r.opts.App.Name, verb, oldName)
	var newSrv *config.Server
	if r.plan.NewMaster != "" {
		newSrv = r.opts.App.Server(r.plan.NewMaster)
		if newSrv != nil {
			r.rep.Subject += " to " + newSrv.String()
		}
	}
	if err != nil {
		r.rep.Error = err.Error()
		r.rep.Subject += " failed"
	} else {
		r.rep.Subject += " succeeded"
	}
	if r.opts.App.ManagerWorkdir != "" {
		if _, werr := r.rep.WriteJSON(r.opts.App.ManagerWorkdir); werr != nil {
			r.logf("could not write the report: %v", werr)
		}
	}
	r.rep.Print(r.out)
	if r.opts.App.ReportScript != "" && old != nil {
		var activated *config.Server
		if err == nil {
			activated = newSrv
		}
		body := strings.Join(r.rep.Lines, "\n")
		if _, herr := r.runHook(ctx, r.opts.App.ReportScript, ReportArgs(r.opts.App, old, activated, newSlaves, r.rep.Subject, body)); herr != nil {
			r.logf("report_script: %v", herr)
		}
	}
	return r.rep
}

// lockedWriter serialises the writes of a run's goroutines to Options.Out.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
