package jepsen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/testbed"
)

// The nemeses of issue 12: a Raft leader deposed while it acts (cut from
// the other managers, or paused in the middle of a long apply), a manager
// whose clock is off, and a failover that must be refused. See doc.go.

// safetyNemeses are added to Nemeses().
func safetyNemeses() []Nemesis {
	return []Nemesis{
		{Name: "leader-partition-mid-phase", ExpectFailover: true, MasterSSHReachable: true, Inject: leaderPartitionMidPhase},
		{Name: "leader-pause-mid-apply", ExpectFailover: true, MasterSSHReachable: true, Setup: leaderPauseSetup, Inject: leaderPauseMidApply},
		{Name: "clock-skew", MasterSSHReachable: true, Setup: clockSkewSetup, Inject: clockSkew},
		{Name: "refused-failover", ExpectFailover: true, MasterSSHReachable: true, MaxHistory: RefusedHistoryBound,
			Setup: refusedFailoverSetup, Inject: refusedFailover},
	}
}

// brokenNemeses deploy something deliberately wrong, to show that a
// checker fails: NemesisByName finds them, a campaign never draws them.
func brokenNemeses() []Nemesis {
	return []Nemesis{
		{Name: "rogue-local-failover", Broken: true, ExpectFailover: true, MasterSSHReachable: true, Inject: rogueLocalFailover},
	}
}

// RefusedHistoryBound is the most history entries a refused-failover round
// may add (its refused attempts and the failover after the ack).
const RefusedHistoryBound = 10

// actingPhases are the failover phases that change servers.
var actingPhases = []string{"failover.2", "failover.3", "failover.4", "failover.5"}

// smallTailTxs is the number of transactions of tail when the nemesis
// wants many small ones (leader-partition-mid-phase).
const smallTailTxs = 10

// bigTxMB is the size of one transaction of a large-transaction tail
// (leader-pause-mid-apply): more than one apply batch (binlog.Apply sends
// at most 4 MiB of base64 text, ~3 MB of events, per batch), so every
// transaction spans batches and a pause lands inside one, as in issue 12
// finding 1 (19 transactions of ~5.7 MB).
const bigTxMB = 5

// bigTailTxs is how many ~bigTxMB transactions make an mb MB tail.
func bigTailTxs(mb int) int { return max(mb/bigTxMB, 1) }

// tail leaves mb MB on the master that no replica has: every replica's IO
// thread is stopped, then txs transactions of ~1 KB rows go into the
// keyless jepsen.big, each a single INSERT ... SELECT (one transaction of
// mb/txs MB of row events), as root over the socket, kept out of the
// general log with sql_log_off. The workload keeps writing meanwhile;
// those writes are in the tail too. Call resumeReplicaIO after killing the
// master.
func (r *Round) tail(ctx context.Context, mb, txs int) error {
	for _, d := range r.env.DBs[1:] {
		if err := d.Server.Exec(ctx, "STOP SLAVE IO_THREAD"); err != nil {
			return fmt.Errorf("tail: stop the IO thread of %s: %w", d.Name(), err)
		}
	}
	conn, err := r.master().Server.Root().Conn(ctx)
	if err != nil {
		return fmt.Errorf("tail: connect to %s: %w", r.master().Name(), err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_log_off=1"); err != nil {
		return fmt.Errorf("tail: %s: %w", r.master().Name(), err)
	}
	perTx := mb * 1000 / txs
	start := time.Now()
	for i := 0; i < txs; i++ {
		q := fmt.Sprintf("INSERT INTO jepsen.big (v, pad) SELECT seq + %d, REPEAT('x', 1000) FROM jepsen.seq_1_to_%d", i*perTx, perTx)
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("tail: write transaction %d on %s: %w", i+1, r.master().Name(), err)
		}
		r.TailRows += perTx
	}
	r.event("tail", fmt.Sprintf("%d rows (~%d MB, %d transactions of ~%d KB) written to %s in %s that no replica received",
		r.TailRows, mb, txs, perTx, r.master().Name(), time.Since(start).Round(time.Millisecond)))
	return nil
}

// resumeReplicaIO starts the replicas' IO threads again after the master's
// kill: they keep trying the dead master, as replicas of a crashed master
// do.
func (r *Round) resumeReplicaIO(ctx context.Context) error {
	for _, d := range r.env.DBs[1:] {
		if !d.Server.Running() {
			continue
		}
		if err := d.Server.Exec(ctx, "START SLAVE IO_THREAD"); err != nil {
			return fmt.Errorf("start the IO thread of %s again: %w", d.Name(), err)
		}
	}
	return nil
}

// killMasterWithTail writes a tail of mb MB in txs transactions, kills the
// master and lets the replicas retry it.
func (r *Round) killMasterWithTail(ctx context.Context, mb, txs int) error {
	if err := r.tail(ctx, mb, txs); err != nil {
		return err
	}
	r.fault(fmt.Sprintf("kill -9 mariadbd on %s (its last ~%d MB reached no replica)", r.master().Name(), mb))
	if err := r.master().Server.Kill9(); err != nil {
		return err
	}
	return r.resumeReplicaIO(ctx)
}

// waitActing polls until the failover lock is held and the journal shows
// one of phases started; it returns the manager that holds the lock.
func (r *Round) waitActing(ctx context.Context, timeout time.Duration, phases ...string) (*ManagerHost, string, error) {
	var seen string
	err := poll(ctx, timeout, 20*time.Millisecond, func() error {
		if !r.obs.LockHeld() {
			return errors.New("no failover lock held")
		}
		for _, p := range phases {
			if r.obs.PhaseStarted(p) {
				seen = p
				return nil
			}
		}
		return fmt.Errorf("lock held by %s but none of %v started yet", r.obs.LockHolder(), phases)
	})
	if err != nil {
		return nil, "", err
	}
	m := r.env.ManagerByID(r.obs.LockHolder())
	if m == nil {
		m = r.env.ManagerByID(r.obs.Leader())
	}
	if m == nil {
		return nil, "", fmt.Errorf("cannot tell the acting manager (lock holder %q, leader %q)", r.obs.LockHolder(), r.obs.Leader())
	}
	return m, seen, nil
}

// electionHold is how long a deposed leader stays cut off: several
// election timeouts, so that the others elect a new leader that resumes.
const electionHold = 8 * time.Second

// leaderPartitionMidPhase cuts the acting Raft leader from the other
// managers (not from the DB hosts) in the middle of a failover phase.
func leaderPartitionMidPhase(ctx context.Context, r *Round) error {
	mb := max(r.tailMB/4, 4)
	if err := r.killMasterWithTail(ctx, mb, smallTailTxs); err != nil {
		return err
	}
	// Half the rounds cut the leader as soon as it acts (phase 2, the
	// dead master's shutdown, or later), half once it applies the tail.
	offsets := logOffsets(r.env)
	m, phase, err := r.waitActing(ctx, 60*time.Second, actingPhases...)
	if err != nil {
		return fmt.Errorf("wait for an acting phase: %w", err)
	}
	if r.rng.IntN(2) == 1 {
		stmt, err := waitApplying(ctx, r.env, m, offsets, 60*time.Second)
		if err != nil {
			return fmt.Errorf("wait for %s to apply the tail: %w", m.ID, err)
		}
		phase = "failover.3, applying: " + stmt
	}
	r.event("fault", fmt.Sprintf("cut leader %s (lock holder, in %s) from the other managers for %s; it still reaches the DB hosts", m.ID, phase, electionHold))
	for _, o := range r.env.Managers {
		if o != m {
			if err := r.env.Net.Cut(m.Net, o.Net); err != nil {
				return err
			}
		}
	}
	hold(ctx, electionHold)
	r.healNet()
	return r.waitFailover(ctx, 120*time.Second)
}

// leaderPauseSetup: the campaign's 1st, 3rd, ... leader-pause-mid-apply
// rounds replicate by GTID (as in issue 12 finding 1), the others by file
// and position.
func leaderPauseSetup(r *Round, s *RoundSetup) {
	s.GTID = r.nth%2 == 0
	r.GTID = s.GTID
}

// leaderPauseMidApply pauses the leader while it applies a large dead
// master tail (transactions bigger than an apply batch), waits until
// another manager finished the failover, then lets the old leader run
// again.
func leaderPauseMidApply(ctx context.Context, r *Round) error {
	mb := max(r.tailMB, bigTxMB)
	if err := r.killMasterWithTail(ctx, mb, bigTailTxs(mb)); err != nil {
		return err
	}
	offsets := logOffsets(r.env)
	m, phase, err := r.waitActing(ctx, 60*time.Second, "failover.3")
	if err != nil {
		return fmt.Errorf("wait for phase 3 (applying): %w", err)
	}
	// Phase 3 first catches up with the latest replica (by GTID through
	// replication, or a relay diff), then applies the dead master's tail;
	// stop the leader once its first batch of tail events reached a
	// server: inside the tail's first transaction, which spans batches.
	stmt, err := waitApplying(ctx, r.env, m, offsets, 60*time.Second)
	if err != nil {
		return fmt.Errorf("wait for %s to apply the tail: %w", m.ID, err)
	}
	r.event("fault", fmt.Sprintf("SIGSTOP mhanode %s (leader, lock holder, in %s, applying: %s)", m.ID, phase, stmt))
	if err := r.env.SignalManager(m, syscall.SIGSTOP); err != nil {
		return err
	}
	werr := poll(ctx, 180*time.Second, 200*time.Millisecond, func() error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		h, err := r.obs.API().History(cctx, "app1")
		if err != nil {
			return err
		}
		for _, e := range h[min(r.histBase, len(h)):] {
			if e.Result == "success" {
				return nil
			}
		}
		return fmt.Errorf("no manager other than the paused %s finished the failover yet", m.ID)
	})
	resumed := time.Now()
	if err := r.env.SignalManager(m, syscall.SIGCONT); err != nil && werr == nil {
		werr = err
	}
	r.heal("SIGCONT mhanode " + m.ID)
	if werr != nil {
		return werr
	}
	// Give the old leader time to do damage: until it changed nothing on
	// any server for 5 s.
	last, err := waitActorQuiet(ctx, r.env, m, resumed, 5*time.Second, 120*time.Second)
	if !last.IsZero() {
		r.event("actor", fmt.Sprintf("%s (resumed) changed servers until %s", m.ID, last.Format("15:04:05.000")))
	}
	return err
}

// waitApplying polls the general logs (from offsets on) until m sent a
// statement that applies binlog events (a BINLOG statement, or START SLAVE
// of binlog.Apply's own replication connection) and returns it,
// shortened. A plain START SLAVE (phase 3's catch-up by GTID with the
// latest replica) or a CHANGE MASTER is not an apply of the tail.
func waitApplying(ctx context.Context, env *Env, m *ManagerHost, offsets map[string]logPos, timeout time.Duration) (string, error) {
	var found string
	err := poll(ctx, timeout, 10*time.Millisecond, func() error {
		for _, d := range env.DBs {
			recs, next := readNewRecords(d, offsets[d.Name()])
			offsets[d.Name()] = next
			for _, rec := range recs {
				if rec.IP != m.Net.IP || rec.User != testbed.MHAUser || !IsStateChange(rec.Command, rec.Argument) {
					continue
				}
				if appliesEvents(rec.Argument) {
					found = d.Name() + ": " + short(rec.Command, rec.Argument)
					return nil
				}
			}
		}
		return fmt.Errorf("%s has applied nothing yet", m.ID)
	})
	return found, err
}

// appliesEvents reports whether a general log argument applies binlog
// events: one of its statements is a BINLOG statement or starts
// binlog.Apply's replication connection.
func appliesEvents(arg string) bool {
	for rest := arg; rest != ""; {
		var stmt string
		stmt, rest = nextStatement(rest)
		s := stripLeadingComments(stmt)
		if len(s) > 200 {
			s = s[:200]
		}
		s = strings.Join(strings.Fields(strings.ToUpper(s)), " ")
		if strings.HasPrefix(s, "BINLOG ") || strings.HasPrefix(s, "START SLAVE '"+strings.ToUpper(binlog.ApplyConnection)+"'") {
			return true
		}
	}
	return false
}

// waitActorQuiet polls the DB hosts' general logs until m has issued no
// state-changing statement for quiet (counted from since at the
// earliest), and returns the time of its last one after since.
func waitActorQuiet(ctx context.Context, env *Env, m *ManagerHost, since time.Time, quiet, timeout time.Duration) (time.Time, error) {
	offsets := logOffsets(env)
	var last time.Time
	err := poll(ctx, timeout, 250*time.Millisecond, func() error {
		for _, d := range env.DBs {
			recs, next := readNewRecords(d, offsets[d.Name()])
			offsets[d.Name()] = next
			for _, rec := range recs {
				if rec.IP == m.Net.IP && rec.User == testbed.MHAUser && IsStateChange(rec.Command, rec.Argument) && rec.At.After(last) {
					last = rec.At
				}
			}
		}
		from := since
		if last.After(from) {
			from = last
		}
		if d := time.Since(from); d < quiet {
			return fmt.Errorf("%s changed a server %s ago", m.ID, d.Round(time.Millisecond))
		}
		return nil
	})
	return last, err
}

// clockSkewOffsets: tens of seconds, either way.
var clockSkewOffsets = []time.Duration{45 * time.Second, -45 * time.Second, 30 * time.Second, -60 * time.Second}

// clockSkewSetup starts one manager with a test-only clock offset: the
// campaign's 1st, 3rd, ... clock-skew rounds start it last (likely a
// follower), the 2nd, 4th, ... first (likely the leader).
func clockSkewSetup(r *Round, s *RoundSetup) {
	m := r.env.Managers[r.rng.IntN(len(r.env.Managers))]
	off := clockSkewOffsets[r.rng.IntN(len(clockSkewOffsets))]
	r.skewed, r.skew = m.ID, off
	if r.nth%2 == 1 {
		s.LeadFirst = m.ID
	} else {
		s.StartLast = m.ID
	}
	if !r.env.SupportsClockOffset() {
		r.harnessError(fmt.Errorf("clock-skew: mhanode has no --test-clock-offset flag (`mhanode --help` does not list it): %s ran with the true clock", m.ID))
		return
	}
	s.ManagerArgs = map[string][]string{m.ID: {"--test-clock-offset=" + off.String()}}
}

// clockSkew: when the skewed manager is the leader, the master is killed
// and a failover must follow (a leader whose clock runs ahead must not
// find every other manager's observation stale). When it is a follower,
// every OTHER manager and every replica are cut from the master: only the
// skewed follower still reaches it, and its "reachable" observation is a
// veto (a manager that reaches the master means it is alive), so there
// must be no failover. A leader that judged that observation on the
// follower's clock (running behind) would find it stale, drop the veto
// and fail over a master the follower and the clients still reach.
func clockSkew(ctx context.Context, r *Round) error {
	s := r.env.ManagerByID(r.skewed)
	leader := r.env.ManagerByID(r.obs.Leader())
	if s == nil || leader == nil {
		return fmt.Errorf("clock-skew: skewed manager %q, leader %q", r.skewed, r.obs.Leader())
	}
	if s == leader {
		r.ExpectFailover = true
		r.fault(fmt.Sprintf("%s (clock %s) is the leader: kill -9 mariadbd on %s", s.ID, signed(r.skew), r.master().Name()))
		if err := r.master().Server.Kill9(); err != nil {
			return err
		}
		return r.waitFailover(ctx, 90*time.Second)
	}
	r.ExpectFailover = false
	var cut []string
	for _, m := range r.env.Managers {
		if m != s {
			cut = append(cut, m.ID)
			if err := r.env.Net.Cut(m.Net, r.master().Net); err != nil {
				return err
			}
		}
	}
	for _, d := range r.env.DBs[1:] {
		if err := r.env.Net.Cut(d.Net, r.master().Net); err != nil {
			return err
		}
	}
	r.fault(fmt.Sprintf("%s (clock %s) is a follower of %s: cut %s and every replica from %s; only %s reaches it",
		s.ID, signed(r.skew), leader.ID, strings.Join(cut, ", "), r.master().Name(), s.ID))
	hold(ctx, r.quiet())
	r.healNet()
	return nil
}

// refusedFailoverSetup takes ignore_fail=1 off one replica.
func refusedFailoverSetup(r *Round, s *RoundSetup) {
	d := r.randomReplica()
	r.refusedReplica = d.Name()
	s.NoIgnoreFail = []string{d.Name()}
}

// refusedHold is how long the master stays dead while the replica without
// ignore_fail is down: every attempt in that time must be refused.
func (r *Round) refusedHold() time.Duration { return 3*r.env.window() + 5*time.Second }

// refusedFailover shuts the replica without ignore_fail down, then kills
// the master: the failover must be refused (no new master, few history
// entries) until the replica is back and `mhactl ack` is run; then it may
// proceed. The replica is shut down, not killed: a file/position replica
// of MariaDB killed with -9 can restart one transaction behind its
// relay-log.info (updated after the commit, not with it) and stop on a
// duplicate key, which the failover rightly halts on; that tests MariaDB's
// crash safety, not the refusal (kill-replica restarts its replica by
// GTID, which is crash-safe).
func refusedFailover(ctx context.Context, r *Round) error {
	d := r.env.DBByAddr(r.refusedReplica)
	if d == nil {
		return fmt.Errorf("refused-failover: no replica %q", r.refusedReplica)
	}
	r.fault(fmt.Sprintf("shut down mariadbd on %s (no ignore_fail), then kill -9 it on master %s", d.Name(), r.master().Name()))
	if err := d.Server.Shutdown(); err != nil {
		return err
	}
	if err := r.master().Server.Kill9(); err != nil {
		return err
	}
	hold(ctx, r.refusedHold())
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	h, err := r.obs.API().History(hctx, "app1")
	cancel()
	if err != nil {
		return fmt.Errorf("refused-failover: read history: %w", err)
	}
	h = h[min(r.histBase, len(h)):]
	for _, e := range h {
		if e.Result == "success" {
			r.nemesisCheck("a failover to %s succeeded at %s although %s (no ignore_fail) was down", e.NewMaster, e.Finished.Format("15:04:05.000"), d.Name())
			break
		}
	}
	r.event("check", fmt.Sprintf("%d history entries while %s was down", len(h), d.Name()))
	if len(h) > RefusedHistoryBound {
		r.nemesisCheck("%d history entries in %s while %s was down (at most %d): refused attempts flood the history",
			len(h), r.refusedHold().Round(time.Second), d.Name(), RefusedHistoryBound)
	}
	r.heal("restart " + d.Name() + " (replicating from the dead master again)")
	if err := d.RestartServer(ctx); err != nil {
		return err
	}
	if err := d.Server.Exec(ctx, "START SLAVE"); err != nil {
		return fmt.Errorf("start replication on %s: %w", d.Name(), err)
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	res, err := r.obs.API().Do(actx, api.Action{Kind: api.ActionAck, App: "app1"})
	cancel()
	switch {
	case err != nil:
		r.event("heal", "mhactl ack: "+err.Error())
	case res != nil:
		r.event("heal", fmt.Sprintf("mhactl ack: ok=%v %s", res.OK, res.Message))
	}
	return poll(ctx, 120*time.Second, 200*time.Millisecond, func() error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		a, err := r.obs.API().App(cctx, "app1")
		if err != nil {
			return err
		}
		if a.Lock == nil && r.env.DBByAddr(a.Master) != nil && r.env.DBByAddr(a.Master) != r.master() {
			return nil
		}
		return fmt.Errorf("no failover after the ack yet (master %s, lock %v)", a.Master, a.Lock != nil)
	})
}

// rogueLocalFailover is a deliberately broken deployment: while the
// cluster's leader applies the dead master's tail, the harness runs
// `mhactl failover --local` against the same servers from its own address.
// Two actors change the servers at once: the one-actor checker must fail
// the round.
func rogueLocalFailover(ctx context.Context, r *Round) error {
	bin, err := r.env.mhactl(ctx)
	if err != nil {
		return err
	}
	if err := r.killMasterWithTail(ctx, max(r.tailMB/4, 4), smallTailTxs); err != nil {
		return err
	}
	m, phase, err := r.waitActing(ctx, 60*time.Second, actingPhases...)
	if err != nil {
		return fmt.Errorf("wait for an acting phase: %w", err)
	}
	r.event("fault", fmt.Sprintf("mhactl failover --local from the harness while %s is in %s", m.ID, phase))
	cctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, bin, "failover", "--local", "--conf", r.env.app, "--dead-master", r.master().Addr(),
		"--yes", "--ignore-last-failover").CombinedOutput()
	os.WriteFile(filepath.Join(r.Dir, "rogue-mhactl.log"), out, 0o644)
	r.event("fault", fmt.Sprintf("mhactl failover --local ended: %v (output in rogue-mhactl.log)", err))
	// Let the cluster's leader go on acting for a while: what it does
	// next is in the general logs.
	hold(ctx, 5*time.Second)
	return nil
}

// mhactl builds cmd/mhactl into the run's directory, once per process
// (testbed.BuildBinaries).
func (e *Env) mhactl(ctx context.Context) (string, error) {
	if err := testbed.BuildBinaries(ctx, e.Opts.Dir, "./cmd/mhactl"); err != nil {
		return "", fmt.Errorf("build mhactl: %w", err)
	}
	return filepath.Join(e.Opts.Dir, "mhactl"), nil
}

// signed prints a duration with its sign: +45s, -45s.
func signed(d time.Duration) string {
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}
