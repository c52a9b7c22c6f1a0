package failover

import (
	"bufio"
	"context"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/internal/secret"
	"github.com/mharaft/mharaft/remote"
)

// TailResult is what was saved of the dead master's binlog.
type TailResult struct {
	End          Coord  // the dead master's binlog position after the last saved event
	LastGTID     string // GTID of the last saved transaction, "" if none
	Transactions int
	Bytes        int64
	Incomplete   string // a dropped half-written transaction, if any
}

// RelaySource is where the latest replica keeps its relay logs.
type RelaySource struct {
	Server     *config.Server
	Dir        string // relay-log directory
	IndexFile  string // relay-log index file (absolute)
	ServerID   uint32 // the replica's own server_id
	ReadMaster Coord  // its Master_Log_File / Read_Master_Log_Pos
}

// LogRecovery moves binlog events for the dead-master pipeline. The
// pipeline declares it; binlogRecovery implements it with the binlog and
// remote packages; tests may replace it.
type LogRecovery interface {
	// SaveTail copies the dead master's binlog from `from` (the latest
	// replica's read position) to its end into the local file out. With
	// a binlog server (dead.BinlogServer: a [binlogN] block) it reads
	// that server's copy in binlogDir, which has no index file.
	SaveTail(ctx context.Context, dead *config.Server, binlogDir string, from Coord, out string) (TailResult, error)
	// RelayDiff writes the events that the latest replica received after
	// `from` (a position in the dead master's binlog) into the local file
	// out. ok is false when there is nothing to write.
	RelayDiff(ctx context.Context, src RelaySource, from Coord, out string) (ok bool, err error)
	// Apply applies event files in order to target, keeping the events'
	// original GTIDs (with sql_log_bin=0 when the target has
	// disable_log_bin), and says exactly what was committed, also when it
	// fails.
	// onConnect, when not nil, runs first on every connection Apply opens
	// to target (the run's fencing: binlog.Target.OnConnect).
	Apply(ctx context.Context, target *config.Server, files []string, onConnect func(context.Context, binlog.Session) error) (binlog.ApplyResult, error)
	// Reach checks that the server's host answers over SSH (and keeps the
	// connection for the other calls).
	Reach(ctx context.Context, s *config.Server) error
	// Close releases what the recovery holds (SSH connections).
	Close() error
}

// binlogRecovery is the default LogRecovery. It keeps one SSH connection
// per host for the whole pipeline (sessions are multiplexed on it); the
// first caller dials, concurrent callers wait for that dial.
type binlogRecovery struct {
	mu      sync.Mutex
	closed  bool
	clients map[string]*sshEntry
}

type sshEntry struct {
	once sync.Once
	c    *remote.Client
	err  error
}

// DefaultRecovery returns the LogRecovery built on the binlog package:
// files read over SSH (one connection per host, batched reads) and events
// applied natively with binlog.Apply.
func DefaultRecovery() LogRecovery { return &binlogRecovery{clients: map[string]*sshEntry{}} }

// client dials s once; concurrent callers share the dial. A connection
// that completes after Close is closed at once.
func (b *binlogRecovery) client(ctx context.Context, s *config.Server) (*remote.Client, error) {
	cfg := remote.ConfigFor(s)
	key := cfg.User + "@" + cfg.Addr()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("ssh to %s: the recovery is closed", key)
	}
	e, ok := b.clients[key]
	if !ok {
		e = &sshEntry{}
		b.clients[key] = e
	}
	b.mu.Unlock()
	e.once.Do(func() {
		c, err := remote.Dial(ctx, cfg)
		// Stored under b.mu: Close may run during the dial (a manager's
		// pre-warm dropped, a pipeline's background dial still going).
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.closed && c != nil {
			c.Close()
			c, err = nil, fmt.Errorf("ssh to %s: the recovery is closed", key)
		}
		e.c, e.err = c, err
	})
	return e.c, e.err
}

func (b *binlogRecovery) Reach(ctx context.Context, s *config.Server) error {
	_, err := b.client(ctx, s)
	return err
}

func (b *binlogRecovery) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, e := range b.clients {
		if e.c != nil {
			e.c.Close()
		}
	}
	return nil
}

func (b *binlogRecovery) SaveTail(ctx context.Context, dead *config.Server, binlogDir string, from Coord, out string) (TailResult, error) {
	who := dead.String()
	if dead.BinlogServer {
		who = fmt.Sprintf("binlog server [%s] %s", dead.Name, dead.Hostname)
	}
	c, err := b.client(ctx, dead)
	if err != nil {
		return TailResult{}, fmt.Errorf("save binlog tail of %s: %w", who, err)
	}
	f, err := secret.Create(out)
	if err != nil {
		return TailResult{}, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	var res binlog.SaveResult
	if dead.BinlogServer {
		res, err = binlog.SaveBinlogServerTail(ctx, c, binlogDir, from.File, from.Pos, bw)
	} else {
		res, err = binlog.SaveMasterTail(ctx, c, binlogDir, "", from.File, from.Pos, bw)
	}
	if err != nil {
		return TailResult{}, fmt.Errorf("save binlog tail of %s: %w", who, err)
	}
	if err := bw.Flush(); err != nil {
		return TailResult{}, fmt.Errorf("save binlog tail of %s into %s: %w", who, out, err)
	}
	tr := TailResult{End: Coord{res.EndFile, uint64(res.EndPos)}, LastGTID: res.LastGTID,
		Transactions: res.Transactions, Bytes: res.Bytes}
	if res.Incomplete != nil {
		tr.Incomplete = res.Incomplete.String()
	}
	return tr, f.Close()
}

func (b *binlogRecovery) RelayDiff(ctx context.Context, src RelaySource, from Coord, out string) (bool, error) {
	if src.ReadMaster.Compare(from) <= 0 {
		return false, nil
	}
	c, err := b.client(ctx, src.Server)
	if err != nil {
		return false, fmt.Errorf("relay diff on %s: %w", src.Server, err)
	}
	f, err := secret.Create(out)
	if err != nil {
		return false, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	rl := binlog.RelayLogs{FS: c, Dir: src.Dir, ServerID: src.ServerID,
		ReadMasterFile: src.ReadMaster.File, ReadMasterPos: src.ReadMaster.Pos}
	_, res, err := binlog.WriteRelayDiff(ctx, rl, src.IndexFile, from.File, from.Pos, bw)
	if err != nil {
		return false, fmt.Errorf("relay diff on %s: %w", src.Server, err)
	}
	if err := bw.Flush(); err != nil {
		return false, fmt.Errorf("relay diff on %s into %s: %w", src.Server, out, err)
	}
	return res.Events > 0, f.Close()
}

// Apply applies the files with binlog.Apply over one connection as the
// server's manager user (the password never leaves this process); every
// connection runs onConnect (the run's fencing) first.
func (*binlogRecovery) Apply(ctx context.Context, target *config.Server, files []string, onConnect func(context.Context, binlog.Session) error) (binlog.ApplyResult, error) {
	if len(files) == 0 {
		return binlog.ApplyResult{}, nil
	}
	t := applyTarget(target, nil)
	t.OnConnect = onConnect
	res, err := binlog.Apply(ctx, t, files, binlog.ApplyOptions{DisableLogBin: target.DisableLogBin,
		ConnectTimeout: 10 * time.Second, Method: binlog.ApplyMethod(target.ApplyMethod)})
	if err != nil {
		return res, fmt.Errorf("apply %s to %s: %w", strings.Join(baseNames(files), ", "), target, err)
	}
	return res, nil
}

func baseNames(files []string) []string {
	var out []string
	for _, f := range files {
		out = append(out, path.Base(f))
	}
	return out
}
