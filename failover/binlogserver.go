package failover

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/internal/secret"
)

// Binlog servers (MHA's [binlogN] blocks).
//
// A binlog server keeps a copy of the master's binlog in its
// master_binlog_dir (`mariadb-binlog --read-from-remote-server --raw
// --stop-never`): the same file names and, since --raw copies the bytes,
// the same positions. When the dead master's binlog cannot be read (its
// SSH unreachable, or the read failed), the tail is read from the latest
// replica's read position from every binlog server in turn, and the one
// that reaches furthest is kept (MHA keeps the largest saved file) and
// applied as the dead master's tail would be, in GTID mode too. A binlog
// server that cannot be reached, lacks the start position or whose
// directory is wrong is skipped with a line naming its block; when none
// gives a tail, the tail is reported lost as before. The plan's TailSource
// names the block the tail came from.

// binlogServerTail is the tail read from the binlog servers, or an
// outcome that is not saved when none gave one.
func (r *run) binlogServerTail(ctx context.Context, from Coord, why string) tailOutcome {
	servers := r.opts.App.BinlogServers
	r.logf("The dead master's binlog could not be read (%s): reading it from %d binlog server(s) from %s.", why, len(servers), from)
	if err := secret.MkdirAll(r.opts.App.ManagerWorkdir); err != nil {
		return tailOutcome{lost: why + "; binlog servers: " + err.Error()}
	}
	var best tailOutcome
	var failures []string
	for _, b := range servers {
		out := filepath.Join(r.opts.App.ManagerWorkdir,
			fmt.Sprintf("saved_binlog_%s_%s_%s.binlog", b.Hostname, b.Name, r.plan.ID))
		res, dir, err := r.saveFromBinlogServer(ctx, b, from, out)
		if err != nil {
			os.Remove(out)
			failures = append(failures, err.Error())
			r.logf("Skipping binlog server [%s] %s: %v", b.Name, b.Hostname, err)
			continue
		}
		r.logf("Binlog server [%s] %s:%s holds the dead master's binlog from %s to %s (%d transactions, %d bytes).",
			b.Name, b.Hostname, dir, from, res.End, res.Transactions, res.Bytes)
		if best.saved && res.End.Compare(best.res.End) <= 0 {
			os.Remove(out)
			continue
		}
		if best.saved {
			os.Remove(best.file)
		}
		best = tailOutcome{saved: true, file: out, res: res, source: b.Name}
	}
	if !best.saved {
		return tailOutcome{lost: why + "; no binlog server had it: " + strings.Join(failures, "; ")}
	}
	return best
}

// saveFromBinlogServer reads the tail from each directory of b's
// master_binlog_dir until one holds the start position.
func (r *run) saveFromBinlogServer(ctx context.Context, b *config.Server, from Coord, out string) (TailResult, string, error) {
	var errs []string
	for _, dir := range strings.Split(b.MasterBinlogDir, ",") {
		res, err := r.opts.Recovery.SaveTail(ctx, b, dir, from, out)
		if err == nil {
			return res, dir, nil
		}
		errs = append(errs, err.Error())
	}
	return TailResult{}, "", fmt.Errorf("%s", strings.Join(errs, "; "))
}

// binlogServerNamed returns the binlog server of block name, or nil.
func binlogServerNamed(app *config.App, name string) *config.Server {
	for _, b := range app.BinlogServers {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// savedFileSource is where a saved file of the plan is read again: the
// binlog server the tail came from (Plan.TailSource, when still
// configured), else the dead master.
func (r *run) savedFileSource(dead *config.Server, f savedFile) *config.Server {
	if f.recorded == r.plan.TailFile && r.plan.TailSource != "" {
		if b := binlogServerNamed(r.opts.App, r.plan.TailSource); b != nil {
			return b
		}
	}
	return dead
}
