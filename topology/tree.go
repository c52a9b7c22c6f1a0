package topology

import (
	"fmt"
	"io"
	"strings"

	"github.com/mharaft/mharaft/dialect"
)

// Tree prints the replication tree the way masterha_check_repl does,
//
//	127.0.0.1(127.0.0.1:3306) (current master)
//	 +--127.0.0.1(127.0.0.1:3307)
//
// followed by one line per server with its role, positions, GTID state,
// lag and replication threads.
func Tree(t *Topology, w io.Writer) {
	printed := map[*ServerState]bool{}
	var walk func(s *ServerState, depth int)
	walk = func(s *ServerState, depth int) {
		if printed[s] {
			return
		}
		printed[s] = true
		line := s.String()
		if depth > 0 {
			line = strings.Repeat(" ", 4*(depth-1)) + " +--" + line
		}
		if s == t.Master {
			line += " (current master"
			if !s.Reachable {
				line += ", unreachable"
			}
			line += ")"
		} else if !s.Reachable {
			line += " (unreachable)"
		}
		fmt.Fprintln(w, line)
		for _, c := range t.Servers {
			if c.Upstream == s && c != s {
				walk(c, depth+1)
			}
		}
	}
	if t.Master != nil {
		walk(t.Master, 0)
	}
	for _, s := range t.Servers {
		if !printed[s] {
			walk(s, 0)
		}
	}
	fmt.Fprintln(w)
	for _, s := range t.Servers {
		fmt.Fprintln(w, Describe(t, s))
	}
}

// Role names the server's place in t: "master", "replica of server1",
// "replica of 10.0.0.9:3306 (not configured)", "standalone".
func Role(t *Topology, s *ServerState) string {
	switch {
	case s == t.Master:
		return "master"
	case s.Replica != nil && s.Upstream != nil:
		return "replica of " + s.Upstream.Server.Name
	case s.Replica != nil:
		return fmt.Sprintf("replica of %s:%d (not configured)", s.Replica.MasterHost, s.Replica.MasterPort)
	case !s.Reachable:
		return "unknown"
	}
	return "standalone"
}

// Describe is one line about s: name, address, role, version, positions,
// GTID, lag and threads.
func Describe(t *Topology, s *ServerState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", s.Server.Name, s.Server, Role(t, s))
	if !s.Reachable {
		fmt.Fprintf(&b, ", unreachable: %v", s.Err)
		return b.String()
	}
	fmt.Fprintf(&b, ", %s", s.Version)
	fmt.Fprintf(&b, ", read_only=%d", b2i(s.ReadOnly))
	if s.MasterStatus != nil {
		fmt.Fprintf(&b, ", binlog %s", s.MasterStatus)
	} else if !s.LogBin {
		b.WriteString(", log_bin=OFF")
	}
	if g := gtidOf(s); g != "" {
		fmt.Fprintf(&b, ", gtid %s", g)
	}
	if r := s.Replica; r != nil {
		fmt.Fprintf(&b, ", read %s, exec %s", r.ReadPos(), r.ExecPos())
		if r.UsesGTID() {
			mode := r.UsingGTID
			if r.AutoPosition {
				mode = "auto_position"
			}
			fmt.Fprintf(&b, " (gtid %s)", mode)
		}
		lag := "NULL"
		if r.SecondsBehindMaster != nil {
			lag = fmt.Sprintf("%ds", *r.SecondsBehindMaster)
		}
		sql := "No"
		if r.SQLRunning {
			sql = "Yes"
		}
		fmt.Fprintf(&b, ", lag %s, io=%s sql=%s", lag, orNone(r.IORunning), sql)
		if r.LastIOError != "" {
			fmt.Fprintf(&b, ", io error %d: %s", r.LastIOErrno, r.LastIOError)
		}
		if r.LastSQLError != "" {
			fmt.Fprintf(&b, ", sql error %d: %s", r.LastSQLErrno, r.LastSQLError)
		}
	}
	b.WriteString(semiSyncText(s.SemiSync))
	return b.String()
}

// semiSyncText is ", semi-sync master ON (active, AFTER_SYNC, timeout 10s,
// 2 clients), replica ON (acknowledging)"; "" when semi-sync is off.
func semiSyncText(ss dialect.SemiSync) string {
	var parts []string
	if ss.MasterEnabled {
		state := "active"
		if !ss.MasterActive {
			state = "INACTIVE (fell back to asynchronous)"
		}
		parts = append(parts, fmt.Sprintf("master ON (%s, %s, timeout %s, %d clients)", state, ss.WaitPoint, ss.Timeout, ss.Clients))
	}
	if ss.ReplicaEnabled {
		state := "acknowledging"
		if !ss.ReplicaActive {
			state = "not acknowledging"
		}
		parts = append(parts, fmt.Sprintf("replica ON (%s)", state))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", semi-sync " + strings.Join(parts, ", ")
}

func gtidOf(s *ServerState) string {
	if s.Version.IsMariaDB() {
		return s.GTIDCurrentPos
	}
	if s.GTIDModeOn {
		return s.GTIDExecuted
	}
	return ""
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
