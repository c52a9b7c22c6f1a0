package topology

import (
	"fmt"
	"sort"
	"strings"
)

// checkBinlogFilters is the binlog half of masterha_check_repl's filter
// check (check_repl_filter=1): every reachable server that writes a
// binlog must log the same databases (SHOW MASTER STATUS's Binlog_Do_DB
// and Binlog_Ignore_DB) as the master, or a replica promoted by a failover
// or a switch would send the others other data than the master did; and
// a replica's replicate_do_db / replicate_ignore_db, when set, must equal
// the master's binlog-do-db / binlog-ignore-db, when set.
func checkBinlogFilters(t *Topology) []Problem {
	if t.App != nil && !t.App.CheckReplFilter {
		return nil
	}
	var ref *ServerState
	if m := t.Master; m != nil && m.Reachable && m.MasterStatus != nil {
		ref = m
	}
	for _, s := range t.Servers {
		if ref == nil && s.Reachable && s.MasterStatus != nil {
			ref = s
		}
	}
	if ref == nil {
		return nil
	}
	refName := ref.Server.Name
	if ref == t.Master {
		refName += " (the master)"
	}
	var ps []Problem
	for _, s := range t.Servers {
		if s == ref || !s.Reachable || s.MasterStatus == nil {
			continue
		}
		if sameList(s.BinlogDoDB, ref.BinlogDoDB) && sameList(s.BinlogIgnoreDB, ref.BinlogIgnoreDB) {
			continue
		}
		ps = append(ps, problem(s, Error, CodeBinlogFilters,
			fmt.Sprintf("binlog filters differ: %s has %s, %s has %s; promoted, it would send the replicas other databases than they receive now",
				s.Server.Name, binlogFilterString(s), refName, binlogFilterString(ref)),
			"use the same binlog-do-db and binlog-ignore-db on every server with log_bin (in my.cnf; SHOW MASTER STATUS shows them), then restart the server that differs"))
	}
	for _, s := range t.Servers {
		if s == ref || !s.Reachable || s.Replica == nil {
			continue
		}
		f := s.Replica.Filters
		for _, c := range []struct{ repl, replName, binlog, binlogName string }{
			{f.DoDB, "replicate_do_db", ref.BinlogDoDB, "binlog-do-db"},
			{f.IgnoreDB, "replicate_ignore_db", ref.BinlogIgnoreDB, "binlog-ignore-db"},
		} {
			if c.repl == "" || c.binlog == "" || sameList(c.repl, c.binlog) {
				continue
			}
			ps = append(ps, problem(s, Error, CodeBinlogFilters,
				fmt.Sprintf("%s=%s here but %s logs %s=%s; the databases this replica takes and those a master sends must be the same",
					c.replName, c.repl, refName, c.binlogName, c.binlog),
				fmt.Sprintf("make %s equal to %s's %s (or leave one of them unset), in my.cnf and with SET GLOBAL", c.replName, ref.Server.Name, c.binlogName)))
		}
	}
	return ps
}

func binlogFilterString(s *ServerState) string {
	var parts []string
	if s.BinlogDoDB != "" {
		parts = append(parts, "binlog-do-db="+s.BinlogDoDB)
	}
	if s.BinlogIgnoreDB != "" {
		parts = append(parts, "binlog-ignore-db="+s.BinlogIgnoreDB)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// sameList compares two comma-separated lists whatever their order.
func sameList(a, b string) bool {
	norm := func(s string) string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	return norm(a) == norm(b)
}
