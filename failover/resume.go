package failover

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/internal/secret"
)

// What the phases of a dead-master failover share to work ahead and to
// resume, in three parts:
//
//   - Background reads (futures): the dead master's tail (MHA's 3.2) and
//     the relay diffs of the replicas behind the latest one (3.4 and 4.1)
//     start in phase 1 from the positions read there (startReads), start
//     again in phase 2 if a position moved, and are waited for where they
//     are needed: the tail by phase 2 (tailFor, through finalTail), a
//     relay diff by phases 3 and 4 (relayDiffFor). A relay diff is read
//     from the latest replica's relay logs or, where those do not hold it,
//     from the other equally latest replicas (diffSources). A resume
//     reuses a tail saved by the earlier run.
//   - Saved files on another manager host: the tail and the top-up of the
//     plan found, saved again or refused (savedFilesFor).
//   - What an interrupted apply committed: applyLogs (phase3_new_master.go)
//     leaves out what an earlier run of the same phase applied
//     (resumeFiles, appliedPrefix).

// tailOutcome is what saveTail found; applyTail records it.
type tailOutcome struct {
	saved   bool
	lost    string // why the tail could not be saved
	file    string
	res     TailResult
	already bool
	source  string // the binlog server block it was read from; "" for the dead master
}

// tailFuture is the dead master's tail being saved in the background.
type tailFuture struct {
	done chan struct{}
	from Coord
	out  tailOutcome
}

// diffFuture is a relay diff being generated in the background.
type diffFuture struct {
	done       chan struct{}
	from       Coord    // the replica's read position
	sources    []string // the replicas whose relay logs are read, in the order tried
	latestRead Coord    // and their read position
	files      []string
	err        error
}

func (f *diffFuture) matches(n *node, srcs []diffSource, latestRead Coord) bool {
	return f.from == n.readCoord() && f.latestRead == latestRead && slices.Equal(f.sources, sourceNames(srcs))
}

// diffSource is a replica whose relay logs a relay diff may be read from,
// as read when the diff is started: a diff running in the background
// reads no node, which the phases refresh meanwhile.
type diffSource struct {
	name string // its name in the configuration
	srv  *config.Server
	// relayBase is its @@relay_log_basename ("" unknown), serverID its
	// own server_id.
	relayBase string
	serverID  uint32
}

func sourceNames(srcs []diffSource) []string {
	var out []string
	for _, s := range srcs {
		out = append(out, s.name)
	}
	return out
}

// diffSources returns the replicas a relay diff up to latestRead may be
// read from: the latest replica first, then (MHA: "relay log not found
// ... trying other latest slaves") every other replica of the dead
// master that received exactly as much, in the configuration's order. Its
// relay logs hold the same events up to latestRead unless they were
// purged (relay_log_purge=1) or never reached back that far. A replica
// repointed already (a resume) replicates from another master and is
// never one.
func (r *run) diffSources(st *failoverState, latest *node, latestRead Coord) []diffSource {
	if latest == nil {
		return nil
	}
	src := func(n *node) diffSource {
		return diffSource{name: n.srv.Name, srv: n.srv, relayBase: n.relayBase, serverID: n.serverID}
	}
	out := []diffSource{src(latest)}
	byName := map[string]*node{}
	for _, n := range st.all {
		byName[n.srv.Name] = n
	}
	for _, s := range r.opts.App.Servers {
		n := byName[s.Name]
		if n == nil || n == latest || st.dead == nil || !n.isReplicaOf(st.dead) || n.readCoord() != latestRead {
			continue
		}
		out = append(out, src(n))
	}
	return out
}

// startReads starts, in the background, the read-only work that the
// recovery needs: saving the dead master's tail from latestRead over SSH
// and (file/position mode) the relay diff of every replica behind the
// latest one. Work already started for the same positions is kept; work
// started for other positions is replaced once it has ended (it writes the
// same files). A tail saved by an earlier run is reused.
func (r *run) startReads(ctx context.Context, st *failoverState, latest *node, latestRead Coord) {
	if latest == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	already := false
	if r.plan.TailFile != "" {
		_, err := os.Stat(r.plan.TailFile)
		already = err == nil
	}
	if !already && (r.tail == nil || r.tail.from != latestRead) {
		old := r.tail
		f := &tailFuture{done: make(chan struct{}), from: latestRead}
		r.tail = f
		dead, id := st.dead, r.plan.ID
		go func() {
			defer close(f.done)
			if old != nil {
				<-old.done
			}
			if r.opts.Recovery.Reach(ctx, dead) != nil {
				return // phase 2 reports SSH as unreachable
			}
			f.out = r.saveTail(ctx, dead, latestRead, id)
		}()
	}
	if r.plan.GTID {
		return
	}
	srcs := r.diffSources(st, latest, latestRead)
	for _, n := range st.all {
		if old := r.diffs[n.srv.Name]; old != nil && old.matches(n, srcs, latestRead) {
			continue
		}
		old := r.diffs[n.srv.Name]
		f := &diffFuture{done: make(chan struct{}), from: n.readCoord(), sources: sourceNames(srcs), latestRead: latestRead}
		r.diffs[n.srv.Name] = f
		go func(n *node) {
			defer close(f.done)
			if old != nil {
				<-old.done
			}
			f.files, f.err = r.makeRelayDiff(ctx, n, f.from, srcs, latestRead)
		}(n)
	}
}

// waitReads waits, after the run's context was cancelled, for the relay
// diffs startReads began in the background, so that a run that returns
// (refused by the election, failed, done) leaves no diff writing into
// manager_workdir: a next run started in the same second names its files
// the same (Plan.ID has one-second resolution). The tail save is not
// waited for: until its SSH dial answers it writes nothing, and that dial
// (up to ssh_connection_timeout to a silent host) does not end at the
// cancellation; once it answers, the save runs on the cancelled context
// and stops before writing. A diff that ignores the cancellation is
// waited for at most limit.
func (r *run) waitReads(limit time.Duration) {
	r.mu.Lock()
	var waits []<-chan struct{}
	for _, f := range r.diffs {
		waits = append(waits, f.done)
	}
	r.mu.Unlock()
	deadline := time.After(limit)
	for _, w := range waits {
		select {
		case <-w:
		case <-deadline:
			r.logf("Background reads of the dead master's binlog or relay diffs did not end within %s of the run's end; their files in %s may still change.", limit, r.opts.App.ManagerWorkdir)
			return
		}
	}
}

// saveTail saves the dead master's binlog from `from`, the latest
// replica's read position. A failure is not fatal: the report names what
// was lost. It reads nothing of r.plan, so it may run in the background.
func (r *run) saveTail(ctx context.Context, dead *config.Server, from Coord, id string) tailOutcome {
	if dead.MasterBinlogDir == "" {
		return tailOutcome{lost: "master_binlog_dir is not set for " + dead.String()}
	}
	out := filepath.Join(r.opts.App.ManagerWorkdir, binlog.SavedMasterBinlogName(dead.Hostname, dead.Port, id))
	if err := secret.MkdirAll(r.opts.App.ManagerWorkdir); err != nil {
		return tailOutcome{lost: err.Error()}
	}
	res, err := r.opts.Recovery.SaveTail(ctx, dead, dead.MasterBinlogDir, from, out)
	if err != nil {
		return tailOutcome{lost: err.Error()}
	}
	return tailOutcome{saved: true, file: out, res: res}
}

// tailFor waits for the tail saved from the final latest read position.
func (r *run) tailFor(ctx context.Context) tailOutcome {
	r.mu.Lock()
	f := r.tail
	r.mu.Unlock()
	if f == nil {
		return tailOutcome{already: true} // saved by an earlier run
	}
	select {
	case <-f.done:
		return f.out
	case <-ctx.Done():
		return tailOutcome{lost: ctx.Err().Error()}
	}
}

// relayDiffFor returns the latest replica's relay-log events that n lacks
// (read from srcs, see diffSources), generated in the background when
// startReads ran for the same positions.
func (r *run) relayDiffFor(ctx context.Context, st *failoverState, n *node, srcs []diffSource) ([]string, error) {
	r.mu.Lock()
	f := r.diffs[n.srv.Name]
	r.mu.Unlock()
	if f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.matches(n, srcs, r.plan.LatestRead) {
			return f.files, f.err
		}
	}
	files, err := r.makeRelayDiff(ctx, n, n.readCoord(), srcs, r.plan.LatestRead)
	if err == nil || r.opts.Resume == nil {
		return files, err
	}
	// A resume (maybe on another manager host) could not generate the
	// diff again: an operator's copy in the workdir is used, an accepted
	// loss is reported, otherwise it halts unless n lacks nothing.
	out := filepath.Join(r.opts.App.ManagerWorkdir, binlog.RelayDiffName(n.srv.Hostname, n.srv.Port, r.plan.ID))
	if _, serr := os.Stat(out); serr == nil {
		r.logf("Relay diff for %s could not be generated again (%v): using %s found in the workdir.", n, err, out)
		return []string{out}, nil
	}
	if _, serr := os.Stat(out + acceptLossSuffix); serr == nil {
		r.addf("%s: the relay diff %s could not be generated (%v) and the operator accepted its loss (%s): not applied.",
			n.srv, filepath.Base(out), err, out+acceptLossSuffix)
		return nil, nil
	}
	return nil, r.relayDiffUnavailable(ctx, n, st.latest, err)
}

// waitDiff waits until the relay diff of n generated in the background,
// if any, has ended: nothing reads relay logs for n any more.
func (r *run) waitDiff(ctx context.Context, n *node) {
	r.mu.Lock()
	f := r.diffs[n.srv.Name]
	r.mu.Unlock()
	if f == nil {
		return
	}
	select {
	case <-f.done:
	case <-ctx.Done():
	}
}

// makeRelayDiff writes the events from `from` up to latestRead that n
// lacks, read from the relay logs of srcs[0], the latest replica; when
// those do not hold them (purged: relay_log_purge=1, or they never reached
// back that far), from the next equally latest replica, and so on (MHA's
// "trying other latest slaves"). Only when none holds them does it fail,
// naming each source's error.
func (r *run) makeRelayDiff(ctx context.Context, n *node, from Coord, srcs []diffSource, latestRead Coord) ([]string, error) {
	if from.Compare(latestRead) >= 0 {
		r.logf("%s has all relay logs; no diff from the latest replica needed.", n)
		return nil, nil
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("relay diff for %s: no latest replica to read it from", n)
	}
	out := filepath.Join(r.opts.App.ManagerWorkdir, binlog.RelayDiffName(n.srv.Hostname, n.srv.Port, r.plan.ID))
	if err := secret.MkdirAll(r.opts.App.ManagerWorkdir); err != nil {
		return nil, fmt.Errorf("relay diff for %s: %w", n, err)
	}
	var failed []string
	var first error
	for i, src := range srcs {
		ok, err := r.relayDiffFrom(ctx, n, from, src, latestRead, out)
		if err == nil {
			if !ok {
				return nil, nil
			}
			how := ""
			if i > 0 {
				how = fmt.Sprintf(" (as latest as %s, whose relay logs do not hold it: %s)", srcs[0].srv, strings.Join(failed, "; "))
			}
			r.addf("%s: relay diff %s..%s generated from the latest replica %s%s.", n.srv, from, latestRead, src.srv, how)
			return []string{out}, nil
		}
		if first == nil {
			first = err
		}
		failed = append(failed, fmt.Sprintf("%s: %v", src.srv, err))
		if ctx.Err() != nil {
			break
		}
		if i+1 < len(srcs) {
			r.logf("The relay logs of %s do not give the diff for %s (%v): trying the other latest slaves.", src.srv, n, err)
		}
	}
	if len(failed) == 1 {
		return nil, fmt.Errorf("relay diff for %s from %s: %w", n, srcs[0].srv, first)
	}
	return nil, fmt.Errorf("relay diff for %s (the dead master's binlog %s to %s): the relay logs of none of the latest replicas hold it: %s: %w; %s. "+
		"They were purged (relay_log_purge=1) or do not reach back that far: keep relay_log_purge=0 on the replicas (purge_relay_logs cleans them safely)",
		n, from, latestRead, srcs[0].srv, first, strings.Join(failed[1:], "; "))
}

// relayDiffFrom writes the diff for n from src's relay logs into out,
// written aside and renamed: a failed generation leaves an existing file
// (an operator's copy, on a resume) untouched.
func (r *run) relayDiffFrom(ctx context.Context, n *node, from Coord, src diffSource, latestRead Coord, out string) (bool, error) {
	if src.relayBase == "" {
		return false, fmt.Errorf("relay_log_basename of %s unknown", src.srv)
	}
	rs := RelaySource{Server: src.srv, Dir: path.Dir(src.relayBase), IndexFile: src.relayBase + ".index",
		ServerID: src.serverID, ReadMaster: latestRead}
	r.logf("Generating relay diff for %s from %s up to %s using %s's relay logs.", n, from, latestRead, src.srv)
	part := out + ".part"
	ok, err := r.opts.Recovery.RelayDiff(ctx, rs, from, part)
	if err == nil && ok {
		err = os.Rename(part, out)
	}
	os.Remove(part)
	return ok, err
}

// Saved files on another manager host.
//
// A failover may be resumed by another manager (a new Raft leader on
// another host). The plan names the saved tail and top-up by their paths
// in the manager_workdir of the manager that saved them (Plan.ManagerHost);
// on this host they may be missing. Before they are applied, savedFilesFor
// finds each one (at the recorded path, or by its name in this manager's
// workdir, where an operator may have copied it), or saves it again from
// the dead master over SSH from the recorded start (binlogs only grow),
// checks that the new read reaches the recorded end and holds the
// recorded last GTID, and cuts it right after that GTID so that it is
// exactly what the plan recorded. When the dead master cannot be read any
// more and the target lacks the file's last transaction, the run halts
// with ErrUnsafeResume and says which file is missing, what it held and
// what the operator can do. Nothing is ever skipped silently.

// acceptLossSuffix names the operator's marker that accepts the loss of a
// missing saved file: `touch <workdir>/<file name>.accept-loss`.
const acceptLossSuffix = ".accept-loss"

// savedFile is a file of the plan read from the dead master's binlog.
type savedFile struct {
	what     string // "binlog tail" or "top-up"
	recorded string // its path on the manager that saved it
	from     Coord  // where it was read from in the dead master's binlog
	end      Coord  // the recorded end of what it holds
	lastGTID string // the recorded GTID of its last transaction
}

// savedFilesFor returns the saved tail and top-up (those holding events)
// as local files for applying to n, restoring them where they are missing
// (see above). The plan itself is not changed: a later run finds a
// restored file by its name in the workdir.
func (r *run) savedFilesFor(ctx context.Context, dead *config.Server, n *node) ([]string, error) {
	r.restoreMu.Lock()
	defer r.restoreMu.Unlock()
	var want []savedFile
	if r.plan.TailFile != "" && r.plan.TailEnd.Compare(r.plan.TailStart) > 0 {
		want = append(want, savedFile{what: "binlog tail", recorded: r.plan.TailFile,
			from: r.plan.TailStart, end: r.plan.TailEnd, lastGTID: r.plan.TailGTID})
	}
	if r.plan.TopUpFile != "" && r.plan.TopUpEnd.Compare(r.plan.TailEnd) > 0 {
		want = append(want, savedFile{what: "top-up (binlog read again after the fence)", recorded: r.plan.TopUpFile,
			from: r.plan.TailEnd, end: r.plan.TopUpEnd, lastGTID: r.plan.TopUpGTID})
	}
	var files []string
	for _, f := range want {
		p, err := r.ensureSaved(ctx, dead, n, f)
		if err != nil {
			return nil, err
		}
		if p != "" {
			files = append(files, p)
		}
	}
	return files, nil
}

// localPath returns where the file is on this host: the recorded path if
// it exists there, else its name in this manager's workdir (ok false when
// it is not there either).
func (r *run) localPath(recorded string) (string, bool) {
	if _, err := os.Stat(recorded); err == nil {
		return recorded, true
	}
	local := filepath.Join(r.opts.App.ManagerWorkdir, filepath.Base(recorded))
	if _, err := os.Stat(local); err == nil {
		return local, true
	}
	return local, false
}

// ensureSaved returns f's local path ("" when nothing of it is to be
// applied to n) or ErrUnsafeResume.
func (r *run) ensureSaved(ctx context.Context, dead *config.Server, n *node, f savedFile) (string, error) {
	local, ok := r.localPath(f.recorded)
	if ok {
		if local != f.recorded {
			r.logf("Using %s, a copy of the %s %s recorded by the manager on %s.", local, f.what, f.recorded, r.plan.ManagerHost)
		}
		return local, nil
	}
	if _, err := os.Stat(local + acceptLossSuffix); err == nil {
		r.addf("%s: the %s %s (dead master's binlog %s to %s, last GTID %s) is missing and the operator accepted its loss (%s): not applied.",
			n.srv, f.what, filepath.Base(local), f.from, f.end, orNone(f.lastGTID), local+acceptLossSuffix)
		r.rep.Lost = &LostRange{From: f.from, To: f.end.String(), Why: "the " + f.what + " was missing on the resuming manager; loss accepted by the operator"}
		return "", nil
	}
	r.logf("The %s %s recorded by the manager on %s is missing on this host: saving it again from %s.", f.what, f.recorded, orNone(r.plan.ManagerHost), dead)
	saveErr := r.resave(ctx, dead, f, local)
	if saveErr == nil {
		from := "the dead master " + dead.String()
		if src := r.savedFileSource(dead, f); src.BinlogServer {
			from = fmt.Sprintf("binlog server [%s] %s", src.Name, src.Hostname)
		}
		r.addf("Saved the %s again from %s (%s to %s, last GTID %s) into %s: it matches the plan.",
			f.what, from, f.from, f.end, orNone(f.lastGTID), local)
		return local, nil
	}
	if has, _ := holdsGTID(ctx, n, f.lastGTID); has {
		r.addf("%s: the %s %s is missing and could not be saved again (%v), but %s already holds its last transaction %s: nothing of it to apply.",
			n.srv, f.what, f.recorded, saveErr, n.srv, f.lastGTID)
		return "", nil
	}
	return "", fmt.Errorf("%w: %s", ErrUnsafeResume, r.missingReport(n, f, local, saveErr))
}

// missingReport says what is missing, what it held and what the operator
// can do.
func (r *run) missingReport(n *node, f savedFile, local string, cause error) string {
	host := r.plan.ManagerHost
	if host == "" {
		host = "the previous manager (host not recorded)"
	}
	return fmt.Sprintf("the %s %s is missing on this manager and could not be saved again from the dead master %s (%v); "+
		"it held the dead master's binlog from %s to %s (last GTID %s), which %s lacks. "+
		"Either copy %s from %s into %s on this manager and resume the failover, "+
		"or accept the loss of these transactions with `touch %s` and resume (they are then reported as lost)",
		f.what, f.recorded, r.plan.OldMaster, cause, f.from, f.end, orNone(f.lastGTID), n.srv,
		f.recorded, host, filepath.Dir(local), local+acceptLossSuffix)
}

// resave saves f again from the dead master into out: a new read from
// f.from reaches at least f.end (binlogs only grow) and is cut right after
// f.lastGTID, so out holds exactly what the plan recorded.
func (r *run) resave(ctx context.Context, dead *config.Server, f savedFile, out string) error {
	if f.lastGTID == "" {
		return fmt.Errorf("the plan records no GTID for it, so a new read cannot be checked against it")
	}
	dead = r.savedFileSource(dead, f)
	if dead.MasterBinlogDir == "" {
		return fmt.Errorf("master_binlog_dir is not set for %s", dead)
	}
	if err := secret.MkdirAll(filepath.Dir(out)); err != nil {
		return err
	}
	if err := r.opts.Recovery.Reach(ctx, dead); err != nil {
		return fmt.Errorf("ssh to %s: %w", dead, err)
	}
	part := out + ".part"
	defer os.Remove(part)
	var res TailResult
	var err error
	if dead.BinlogServer {
		res, _, err = r.saveFromBinlogServer(ctx, dead, f.from, part)
	} else {
		res, err = r.opts.Recovery.SaveTail(ctx, dead, dead.MasterBinlogDir, f.from, part)
	}
	if err != nil {
		return err
	}
	if res.End.Compare(f.end) < 0 {
		return fmt.Errorf("the dead master's binlog from %s now ends at %s, before the recorded end %s", f.from, res.End, f.end)
	}
	if err := cutAfterGTID(part, f.lastGTID, out); err != nil {
		return fmt.Errorf("saved again from %s: %w", f.from, err)
	}
	return nil
}

// cutAfterGTID copies the local binlog in to out up to the end of the
// transaction whose GTID is gtid (the start of the next transaction),
// checking that every transaction up to it has a GTID and that out ends
// with it.
func cutAfterGTID(in, gtid, out string) error {
	gtids, err := binlog.TransactionGTIDs(in)
	if err != nil {
		return err
	}
	k := -1
	for i, g := range gtids {
		if g == "" {
			return fmt.Errorf("transaction %d has no GTID", i+1)
		}
		if g == gtid {
			k = i
			break
		}
	}
	if k < 0 {
		return fmt.Errorf("it does not hold the recorded last GTID %s (it holds %d transaction(s))", gtid, len(gtids))
	}
	// Cut at the (k+2)-th GTID event, the start of the next transaction.
	rd, err := binlog.Open(in)
	if err != nil {
		return err
	}
	rd.SetHeaderOnly(true)
	cut := int64(-1)
	seen := 0
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			rd.Close()
			return err
		}
		if ev.Type == replication.MARIADB_GTID_EVENT || ev.Type == replication.GTID_EVENT {
			if seen == k+1 {
				cut = ev.Offset
				break
			}
			seen++
		}
	}
	rd.Close()
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := secret.Create(out)
	if err != nil {
		return err
	}
	if cut >= 0 {
		_, err = io.CopyN(dst, src, cut)
	} else {
		_, err = io.Copy(dst, src)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("write %s: %w", out, err)
	}
	got, err := binlog.TransactionGTIDs(out)
	if err != nil || len(got) != k+1 || got[k] != gtid {
		os.Remove(out)
		return fmt.Errorf("cut after GTID %s into %s: got %d transaction(s) (%v)", gtid, out, len(got), err)
	}
	return nil
}

// holdsGTID tells whether n's gtid_binlog_pos covers gtid (MariaDB only).
func holdsGTID(ctx context.Context, n *node, gtid string) (bool, error) {
	if gtid == "" || !n.d.V.IsMariaDB() {
		return false, nil
	}
	if err := n.refreshGTID(ctx); err != nil {
		return false, err
	}
	return coversPos(n.gtidBinlogPos, gtid), nil
}

// coversPos tells whether the MariaDB GTID position have covers want.
func coversPos(have, want string) bool {
	h, err1 := dialect.ParseMariaDBPos(have)
	w, err2 := dialect.ParseMariaDBPos(want)
	return err1 == nil && err2 == nil && strings.TrimSpace(want) != "" && h.Covers(w)
}

// relayDiffUnavailable decides what a failed relay diff means on a
// resume: nothing when n already holds what the latest replica executed,
// otherwise ErrUnsafeResume naming the diff, its positions and what the
// operator can do. Outside a resume the error stands as it is.
func (r *run) relayDiffUnavailable(ctx context.Context, n, latest *node, cause error) error {
	if r.opts.Resume == nil {
		return cause
	}
	if n.d.V.IsMariaDB() && latest.d.V.IsMariaDB() && latest.refreshGTID(ctx) == nil {
		if has, _ := holdsGTID(ctx, n, latest.gtidSlavePos); has {
			r.addf("%s: its relay diff from %s could not be generated (%v), but it already holds %s, all that %s executed: nothing to apply.",
				n.srv, latest.srv, cause, latest.gtidSlavePos, latest.srv)
			return nil
		}
	}
	out := filepath.Join(r.opts.App.ManagerWorkdir, binlog.RelayDiffName(n.srv.Hostname, n.srv.Port, r.plan.ID))
	return fmt.Errorf("%w: the relay diff %s for %s (the dead master's binlog %s to %s, from the relay logs of %s) "+
		"could not be generated again (%v) and %s lacks it. Either copy %s from the manager on %s into %s "+
		"and resume the failover, or accept the loss with `touch %s` and resume",
		ErrUnsafeResume, filepath.Base(out), n.srv, n.readCoord(), r.plan.LatestRead, latest.srv, cause, n.srv,
		filepath.Base(out), orNone(r.plan.ManagerHost), r.opts.App.ManagerWorkdir, out+acceptLossSuffix)
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// What an interrupted apply committed.

// resumeFiles returns the part of files still to apply to n. Only when
// this run resumes `phase`, interrupted by an earlier run, can part of
// them be applied already; then the proof is n's binlog GTID position:
// binlog.Apply commits the transactions one by one in order with their
// original GTIDs, so the last one applied is the one whose GTID n's
// gtid_binlog_pos names, and exactly the transactions before it are
// covered. Without that proof (MySQL, log_bin off, disable_log_bin,
// events without GTIDs, an inconsistent position) it halts with
// ErrUnsafeResume.
func (r *run) resumeFiles(ctx context.Context, n *node, files []string, phase string) ([]string, error) {
	if len(files) == 0 || r.opts.Resume == nil || r.opts.Resume.Interrupted != phase {
		return files, nil
	}
	unsafe := func(why string) error {
		return fmt.Errorf("%w: the earlier run stopped in %q while it may have been applying %s to %s, and %s; "+
			"compare %s with the files and apply what it lacks by hand, then run the failover again",
			ErrUnsafeResume, phase, strings.Join(files, ", "), n, why, n)
	}
	counts := make([]int, len(files))
	var all []string
	for i, f := range files {
		g, err := binlog.TransactionGTIDs(f)
		if err != nil {
			return nil, err
		}
		counts[i] = len(g)
		all = append(all, g...)
	}
	switch {
	case !n.d.V.IsMariaDB():
		return nil, unsafe("only MariaDB's gtid_binlog_pos can tell what was applied")
	case !n.logBin:
		return nil, unsafe("its binary log is off, so it keeps no GTID of what was applied")
	case n.srv.DisableLogBin:
		return nil, unsafe("disable_log_bin applies without binary logging, so it keeps no GTID of what was applied")
	}
	for _, g := range all {
		if g == "" {
			return nil, unsafe("the events carry no GTIDs")
		}
	}
	// An apply through replication that the earlier run left behind may
	// still be running on n: stopped first, so the position is settled.
	if err := binlog.RemoveLeftoverApply(ctx, applyTarget(n.srv, r.fence), 10*time.Second); err != nil {
		return nil, fmt.Errorf("resume on %s: %w", n, err)
	}
	if err := n.refreshGTID(ctx); err != nil {
		return nil, err
	}
	done, err := appliedPrefix(all, n.gtidBinlogPos)
	if err != nil {
		return nil, unsafe(err.Error())
	}
	if done == 0 {
		r.logf("%s holds none of the %d transaction(s) to apply (gtid_binlog_pos %s).", n, len(all), n.gtidBinlogPos)
		return files, nil
	}
	r.addf("%s: the earlier run had applied %d of %d transaction(s) (up to GTID %s); applying the other %d.",
		n.srv, done, len(all), all[done-1], len(all)-done)
	var rest []string
	skip := done
	for i, f := range files {
		switch {
		case skip >= counts[i]:
			skip -= counts[i]
		case skip > 0:
			out := f + ".resume"
			if _, err := binlog.SkipTransactions(f, skip, out); err != nil {
				return nil, err
			}
			rest = append(rest, out)
			skip = 0
		default:
			rest = append(rest, f)
		}
	}
	return rest, nil
}

// appliedPrefix returns how many of the transactions (MariaDB GTIDs, in
// apply order) the server holds according to its gtid_binlog_pos: the
// last one applied is the last whose GTID the position names exactly; all
// before it must be covered by the position and none after it.
func appliedPrefix(gtids []string, binlogPos string) (int, error) {
	pos, err := dialect.ParseMariaDBPos(binlogPos)
	if err != nil {
		return 0, fmt.Errorf("cannot parse gtid_binlog_pos: %w", err)
	}
	have := map[uint32]dialect.MariaDBGTID{}
	for _, g := range pos {
		have[g.Domain] = g
	}
	last := -1
	parsed := make([]dialect.MariaDBGTID, len(gtids))
	for i, s := range gtids {
		p, err := dialect.ParseMariaDBPos(s)
		if err != nil || len(p) != 1 {
			return 0, fmt.Errorf("cannot parse GTID %q", s)
		}
		g := p[0]
		parsed[i] = g
		if h, ok := have[g.Domain]; ok && h == g {
			last = i
		}
	}
	for i, g := range parsed {
		h, ok := have[g.Domain]
		covered := ok && h.Seq >= g.Seq
		if i <= last && !covered {
			return 0, fmt.Errorf("gtid_binlog_pos %s names %s but lacks the earlier %s", binlogPos, gtids[last], gtids[i])
		}
		if i > last && covered {
			return 0, fmt.Errorf("gtid_binlog_pos %s covers %s, which follows the last transaction it names", binlogPos, gtids[i])
		}
	}
	return last + 1, nil
}
