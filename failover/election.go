package failover

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
)

// Coord is a position in the (dead) master's binary log as a replica sees
// it: Master_Log_File/Read_Master_Log_Pos or Relay_Master_Log_File/
// Exec_Master_Log_Pos.
type Coord struct {
	File string `json:"file"`
	Pos  uint64 `json:"pos"`
}

func (c Coord) String() string { return fmt.Sprintf("%s:%d", c.File, c.Pos) }

// IsZero reports an unset coordinate.
func (c Coord) IsZero() bool { return c.File == "" && c.Pos == 0 }

// Compare orders coordinates like MHA's pos_cmp: file names compare as
// strings (they share a basename and a zero-padded number), then positions.
func (c Coord) Compare(o Coord) int {
	switch {
	case c.File == o.File && c.Pos == o.Pos:
		return 0
	case c.File < o.File || (c.File == o.File && c.Pos < o.Pos):
		return -1
	}
	return 1
}

// Candidate is what the election knows about one alive replica.
type Candidate struct {
	Server  *config.Server
	LogBin  bool   // log_bin is ON
	Version string // @@version, e.g. "10.11.6-MariaDB-log"
	Read    Coord  // Master_Log_File / Read_Master_Log_Pos
	Exec    Coord  // Relay_Master_Log_File / Exec_Master_Log_Pos
	// NoMaster is set by the pipeline when the replica cannot be a master
	// (MHA's set_no_master_if_older / lack_relay_log); the config's
	// no_master= is read from Server.
	NoMaster bool
	// SemiSync is set when the replica has semi-sync enabled
	// (rpl_semi_sync_slave_enabled): it acknowledged the master's writes,
	// so under AFTER_SYNC it holds every write acknowledged to a client.
	SemiSync bool
}

// Name is the server's name for messages.
func (c *Candidate) Name() string { return c.Server.String() }

// ElectionInput is everything select_new_master looks at.
type ElectionInput struct {
	// Candidates are the alive replicas in configuration order.
	Candidates []*Candidate
	// Preferred is an explicit --new-master (a key for config.App.Server:
	// name, host:port, ip:port); "" elects by the rules.
	Preferred string
	// CheckReplDelay enables the "too far behind" rule (MHA passes the
	// latest base replica's check_repl_delay for a failover and 0 for an
	// online switch): a replica whose SQL thread is more than 100,000,000
	// bytes of the master's binlog behind the latest replica's IO thread
	// is not elected.
	CheckReplDelay bool
	// Behind measures that distance in bytes when the two positions lie in
	// different binlog files (the master rotated its binlog in between),
	// where MHA compares file names and calls every such replica too far
	// behind, refusing the failover when all are (MHA issue #143). ok is
	// false when it cannot tell; then (and without Behind) such a replica
	// is too far behind as in MHA, unless that would leave no replica to
	// elect: a delay that could not be measured never refuses a failover.
	Behind func(c, latest *Candidate) (bytes uint64, ok bool)
	// DeadMasterDC is the datacenter of the (dead) master; with
	// PreventCrossDC no server of another datacenter may be elected.
	DeadMasterDC   string
	PreventCrossDC bool
}

// Bad reasons, as printed in the election's log and tested.
const (
	BadNoMaster      = "no_master is set"
	BadLogBinOff     = "log_bin is disabled"
	BadNotOldestVer  = "not on the oldest major version"
	BadReplDelay     = "replication delay too large (check_repl_delay)"
	BadOtherDC       = "in another datacenter (prevent_cross_dc_failover)"
	maxReplDelayByte = 100000000 // MHA: 100MB behind the latest replica
)

// ErrNoCandidate is returned when no replica can become the new master.
var ErrNoCandidate = errors.New("none of the replicas can become the new master")

// Election is the result: the chosen replica, the latest replicas and the
// reason each bad replica was rejected.
type Election struct {
	NewMaster *Candidate
	Latest    []*Candidate
	Bad       map[*Candidate]string
	Log       []string // what the rules did, in MHA's words
	// unmeasured are the replicas bad only because their delay across a
	// rotation could not be measured.
	unmeasured map[*Candidate]bool
}

// MajorVersion parses "10.11.6-MariaDB-log" into 10011 (major*1000+minor).
func MajorVersion(v string) int {
	f := strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '-' })
	if len(f) < 2 {
		return 0
	}
	maj, _ := strconv.Atoi(f[0])
	min, _ := strconv.Atoi(f[1])
	return maj*1000 + min
}

// LatestOf returns the replicas that received the most of the master's
// binlog (MHA's identify_latest_slaves), in input order.
func LatestOf(cs []*Candidate) []*Candidate { return extremes(cs, 1) }

// OldestOf returns the replicas that received the least.
func OldestOf(cs []*Candidate) []*Candidate { return extremes(cs, -1) }

func extremes(cs []*Candidate, sign int) []*Candidate {
	var out []*Candidate
	for _, c := range cs {
		if len(out) == 0 {
			out = []*Candidate{c}
			continue
		}
		switch cmp := c.Read.Compare(out[0].Read) * sign; {
		case cmp > 0:
			out = []*Candidate{c}
		case cmp == 0:
			out = append(out, c)
		}
	}
	return out
}

// badReason returns why c cannot be the new master, or "".
func (e *Election) badReason(in ElectionInput, c *Candidate, latest *Candidate, oldestMajor int) string {
	otherDC := in.PreventCrossDC && c.Server.Datacenter != in.DeadMasterDC
	switch {
	case c.Server.NoMaster || c.NoMaster:
		return BadNoMaster
	case !c.LogBin:
		return BadLogBinOff
	case MajorVersion(c.Version) != oldestMajor:
		return BadNotOldestVer
	}
	if in.CheckReplDelay && latest != nil {
		n, known := replDelay(in, c, latest)
		switch {
		case !known:
			e.Log = append(e.Log, fmt.Sprintf("%s: SQL thread at %s, the latest replica read up to %s: across a rotation of the master's binlog, and the distance could not be measured",
				c.Name(), c.Exec, latest.Read))
			if !otherDC {
				e.unmeasured[c] = true
			}
			return BadReplDelay
		case n > maxReplDelayByte:
			e.Log = append(e.Log, fmt.Sprintf("%s: SQL thread delays too much: at %s, %d bytes behind the latest replica's %s (more than %d); recovery would take long",
				c.Name(), c.Exec, n, latest.Read, maxReplDelayByte))
			return BadReplDelay
		case c.Exec.File != latest.Read.File:
			e.Log = append(e.Log, fmt.Sprintf("%s: SQL thread at %s, %d bytes behind the latest replica's %s across a rotation of the master's binlog: within %d",
				c.Name(), c.Exec, n, latest.Read, maxReplDelayByte))
		}
	}
	if otherDC {
		return BadOtherDC
	}
	return ""
}

// replDelay is how many bytes of the master's binlog lie between c's SQL
// thread and the latest replica's IO thread; known is false when they are
// in different files and in.Behind cannot tell.
func replDelay(in ElectionInput, c, latest *Candidate) (n uint64, known bool) {
	switch {
	case c.Exec.Compare(latest.Read) >= 0:
		return 0, true
	case c.Exec.File == latest.Read.File:
		return latest.Read.Pos - c.Exec.Pos, true
	case in.Behind != nil:
		return in.Behind(c, latest)
	}
	return 0, false
}

// Elect chooses the new master with MHA's rules, in this order:
//  1. an explicit Preferred server, unless it is bad (then: error, no fallback);
//  2. with latest_priority: a latest replica that is candidate_master;
//  3. any candidate_master, in configuration order;
//  4. a replica with semi-sync enabled (Candidate.SemiSync), a latest one
//     first, then in configuration order;
//  5. with latest_priority: any latest replica;
//  6. any replica, in configuration order.
//
// A bad replica (no_master, log_bin off, not the oldest major version, too
// far behind with check_repl_delay, another datacenter with
// prevent_cross_dc_failover) is never chosen, except one whose delay
// across a rotation of the master's binlog could not be measured (see
// ElectionInput.Behind) when every replica would be refused otherwise.
func Elect(in ElectionInput) (*Election, error) {
	if len(in.Candidates) == 0 {
		return nil, fmt.Errorf("elect new master: no alive replicas: %w", ErrNoCandidate)
	}
	e := &Election{Latest: LatestOf(in.Candidates), Bad: map[*Candidate]string{}, unmeasured: map[*Candidate]bool{}}
	oldestMajor := 0
	for _, c := range in.Candidates {
		if v := MajorVersion(c.Version); oldestMajor == 0 || v < oldestMajor {
			oldestMajor = v
		}
	}
	for _, c := range in.Candidates {
		if r := e.badReason(in, c, e.Latest[0], oldestMajor); r != "" {
			e.Bad[c] = r
			e.Log = append(e.Log, fmt.Sprintf("%s cannot be the new master: %s", c.Name(), r))
		}
	}
	ok := func(c *Candidate) bool { _, bad := e.Bad[c]; return !bad }
	// A delay that could not be measured does not refuse the failover.
	if !slices.ContainsFunc(in.Candidates, ok) {
		for _, c := range in.Candidates {
			if e.unmeasured[c] {
				delete(e.Bad, c)
				e.Log = append(e.Log, fmt.Sprintf("%s can be the new master after all: its delay across the rotation could not be measured, and every replica would be refused otherwise", c.Name()))
			}
		}
	}
	pick := func(c *Candidate, why string) (*Election, error) {
		e.NewMaster = c
		e.Log = append(e.Log, fmt.Sprintf("new master is %s: %s", c.Name(), why))
		return e, nil
	}

	if in.Preferred != "" {
		for _, c := range in.Candidates {
			if matches(c.Server, in.Preferred) {
				if !ok(c) {
					return e, fmt.Errorf("elect new master: %s is bad as a new master: %s: %w", c.Name(), e.Bad[c], ErrNoCandidate)
				}
				return pick(c, "chosen by the operator")
			}
		}
		return e, fmt.Errorf("elect new master: %s is not an alive replica: %w", in.Preferred, ErrNoCandidate)
	}

	latestPriority := e.Latest[0].Server.LatestPriority
	if latestPriority {
		for _, c := range e.Latest {
			if c.Server.CandidateMaster && ok(c) {
				return pick(c, "latest replica with candidate_master")
			}
		}
	}
	for _, c := range in.Candidates {
		if c.Server.CandidateMaster && ok(c) {
			return pick(c, "candidate_master")
		}
	}
	// Semi-sync replicas hold every acknowledged write: the latest of
	// them first, then in configuration order, whatever latest_priority.
	for _, c := range e.Latest {
		if c.SemiSync && ok(c) {
			return pick(c, "latest replica that acknowledged semi-sync")
		}
	}
	for _, c := range in.Candidates {
		if c.SemiSync && ok(c) {
			return pick(c, "replica that acknowledged semi-sync")
		}
	}
	if latestPriority {
		for _, c := range e.Latest {
			if ok(c) {
				return pick(c, "latest replica")
			}
		}
	}
	for _, c := range in.Candidates {
		if ok(c) {
			return pick(c, "first suitable replica")
		}
	}
	return e, fmt.Errorf("elect new master: %w", ErrNoCandidate)
}

// matches reports whether key names s (name, host, host:port, ip:port).
func matches(s *config.Server, key string) bool {
	a := &config.App{Servers: []*config.Server{s}}
	return a.Server(key) == s
}

func (e *Election) logLines() []string {
	if e == nil {
		return nil
	}
	return e.Log
}

// relayMeasurer is a LogRecovery that measures relay logs (binlogRecovery).
type relayMeasurer interface {
	// RelayBytesAfter returns how many bytes of the dead master's binlog
	// src's relay logs hold after from (more than limit: a lower bound).
	RelayBytesAfter(ctx context.Context, src RelaySource, from Coord, limit int64) (int64, error)
}

// RelayBytesAfter reads the relay logs over SSH (binlog.RelayBytesAfter).
func (b *binlogRecovery) RelayBytesAfter(ctx context.Context, src RelaySource, from Coord, limit int64) (int64, error) {
	c, err := b.client(ctx, src.Server)
	if err != nil {
		return 0, fmt.Errorf("measure the relay logs of %s: %w", src.Server, err)
	}
	rl := binlog.RelayLogs{FS: c, Dir: src.Dir, ServerID: src.ServerID, ReadMasterFile: src.ReadMaster.File, ReadMasterPos: src.ReadMaster.Pos}
	n, err := binlog.RelayBytesAfter(ctx, rl, src.IndexFile, from.File, from.Pos, limit)
	if err != nil {
		return 0, fmt.Errorf("measure the relay logs of %s: %w", src.Server, err)
	}
	return n, nil
}

// behindTimeout bounds one measurement of the election (a slow host must
// not hold the failover: the delay is then unknown).
const behindTimeout = 30 * time.Second

// behind is the election's Behind for a failover: the bytes of the dead
// master's binlog after a candidate's SQL thread position, in the latest
// replica's relay logs (up to its read position); when they no longer
// reach back that far (purged), in the candidate's own relay logs (up to
// its read position) plus the latest replica's after that. nil when the
// recovery cannot read relay logs.
func (r *run) behind(ctx context.Context) func(c, latest *Candidate) (uint64, bool) {
	m, ok := r.opts.Recovery.(relayMeasurer)
	if !ok {
		return nil
	}
	return func(c, latest *Candidate) (uint64, bool) {
		ln, cn := r.nodes[latest.Server.Name], r.nodes[c.Server.Name]
		if ln == nil || cn == nil {
			return 0, false
		}
		ctx, cancel := context.WithTimeout(ctx, behindTimeout)
		defer cancel()
		measure := func(n *node, read, from Coord) (uint64, bool) {
			if n.relayBase == "" {
				return 0, false
			}
			src := RelaySource{Server: n.srv, Dir: path.Dir(n.relayBase), IndexFile: n.relayBase + ".index", ServerID: n.serverID, ReadMaster: read}
			b, err := m.RelayBytesAfter(ctx, src, from, maxReplDelayByte)
			if err != nil {
				r.logf("Delay of %s: %v", c.Name(), err)
				return 0, false
			}
			return uint64(b), true
		}
		if n, ok := measure(ln, latest.Read, c.Exec); ok {
			return n, true
		}
		own, ok := measure(cn, c.Read, c.Exec)
		if !ok {
			return 0, false
		}
		if c.Read.File == latest.Read.File && c.Read.Pos <= latest.Read.Pos {
			return own + latest.Read.Pos - c.Read.Pos, true
		}
		rest, ok := measure(ln, latest.Read, c.Read)
		return own + rest, ok
	}
}
