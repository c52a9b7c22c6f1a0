package failover

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/internal/secret"
)

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
		r.addf("Saved the %s again from the dead master %s (%s to %s, last GTID %s) into %s: it matches the plan.",
			f.what, dead, f.from, f.end, orNone(f.lastGTID), local)
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
	res, err := r.opts.Recovery.SaveTail(ctx, dead, dead.MasterBinlogDir, f.from, part)
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
