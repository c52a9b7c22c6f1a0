package failover

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
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
	// replica's read position) to its end into the local file out.
	SaveTail(ctx context.Context, dead *config.Server, binlogDir string, from Coord, out string) (TailResult, error)
	// RelayDiff writes the events that the latest replica received after
	// `from` (a position in the dead master's binlog) into the local file
	// out. ok is false when there is nothing to write.
	RelayDiff(ctx context.Context, src RelaySource, from Coord, out string) (ok bool, err error)
	// Apply applies event files in order to target, keeping the events'
	// original GTIDs.
	Apply(ctx context.Context, target *config.Server, files []string) error
	// Reach checks that the server's host answers over SSH.
	Reach(ctx context.Context, s *config.Server) error
	// Close releases what the recovery holds (SSH connections).
	Close() error
}

// binlogRecovery is the default LogRecovery. It keeps one SSH connection
// per host for the whole pipeline (sessions are multiplexed on it).
type binlogRecovery struct {
	mu      sync.Mutex
	clients map[string]*sshEntry
}

type sshEntry struct {
	once sync.Once
	c    *remote.Client
	err  error
}

// DefaultRecovery returns the LogRecovery built on the binlog package
// (files read over SSH) and the mariadb-binlog | mariadb client pipe.
func DefaultRecovery() LogRecovery { return &binlogRecovery{clients: map[string]*sshEntry{}} }

// client dials s once; concurrent callers share the dial.
func (b *binlogRecovery) client(ctx context.Context, s *config.Server) (*remote.Client, error) {
	cfg := remote.ConfigFor(s)
	b.mu.Lock()
	e, ok := b.clients[cfg.Addr()+"/"+cfg.User]
	if !ok {
		e = &sshEntry{}
		b.clients[cfg.Addr()+"/"+cfg.User] = e
	}
	b.mu.Unlock()
	e.once.Do(func() { e.c, e.err = remote.Dial(ctx, cfg) })
	return e.c, e.err
}

func (b *binlogRecovery) Reach(ctx context.Context, s *config.Server) error {
	_, err := b.client(ctx, s)
	return err
}

func (b *binlogRecovery) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, e := range b.clients {
		if e.c != nil {
			e.c.Close()
		}
		delete(b.clients, k)
	}
	return nil
}

func (b *binlogRecovery) SaveTail(ctx context.Context, dead *config.Server, binlogDir string, from Coord, out string) (TailResult, error) {
	c, err := b.client(ctx, dead)
	if err != nil {
		return TailResult{}, fmt.Errorf("save binlog tail of %s: %w", dead, err)
	}
	f, err := os.Create(out)
	if err != nil {
		return TailResult{}, err
	}
	defer f.Close()
	res, err := binlog.SaveMasterTail(ctx, c, binlogDir, "", from.File, from.Pos, f)
	if err != nil {
		return TailResult{}, fmt.Errorf("save binlog tail of %s: %w", dead, err)
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
	files, err := binlog.ReadIndex(ctx, c, src.IndexFile)
	if err != nil {
		return false, fmt.Errorf("relay diff on %s: %w", src.Server, err)
	}
	rl := binlog.RelayLogs{FS: c, Dir: src.Dir, Files: files, ServerID: src.ServerID,
		ReadMasterFile: src.ReadMaster.File, ReadMasterPos: src.ReadMaster.Pos}
	start, err := binlog.FindRelayPosition(ctx, rl, from.File, from.Pos)
	if err != nil {
		return false, fmt.Errorf("relay diff on %s: %w", src.Server, err)
	}
	f, err := os.Create(out)
	if err != nil {
		return false, err
	}
	defer f.Close()
	res, err := binlog.WriteDiff(ctx, rl, start, f)
	if err != nil {
		return false, fmt.Errorf("relay diff on %s: %w", src.Server, err)
	}
	return res.Events > 0, f.Close()
}

// Apply pipes the files through mariadb-binlog into the mariadb client on
// this host (MHA's apply_binlog_to_master does the same with mysqlbinlog).
// The password travels in MYSQL_PWD, never on a command line.
func (*binlogRecovery) Apply(ctx context.Context, target *config.Server, files []string) error {
	if len(files) == 0 {
		return nil
	}
	decode := exec.CommandContext(ctx, "mariadb-binlog", files...)
	client := exec.CommandContext(ctx, "mariadb", "--binary-mode", "--host="+target.IP, "--port="+strconv.Itoa(target.Port),
		"--user="+target.User, "--protocol=TCP")
	client.Env = append(os.Environ(), "MYSQL_PWD="+target.Password)
	pipe, err := decode.StdoutPipe()
	if err != nil {
		return err
	}
	client.Stdin = pipe
	var decErr, cliOut bytes.Buffer
	decode.Stderr = &decErr
	client.Stdout, client.Stderr = &cliOut, &cliOut
	if err := client.Start(); err != nil {
		return fmt.Errorf("apply %s to %s: start mariadb client: %w", strings.Join(baseNames(files), ","), target, err)
	}
	if err := decode.Run(); err != nil {
		client.Wait()
		return fmt.Errorf("apply %s to %s: mariadb-binlog: %w: %s", strings.Join(baseNames(files), ","), target, err, decErr.String())
	}
	if err := client.Wait(); err != nil {
		return fmt.Errorf("apply %s to %s: mariadb client: %w: %s", strings.Join(baseNames(files), ","), target, err, cliOut.String())
	}
	return nil
}

func baseNames(files []string) []string {
	var out []string
	for _, f := range files {
		out = append(out, path.Base(f))
	}
	return out
}
