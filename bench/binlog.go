package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/testbed"
)

func init() { Register("binlog", binlogSuite) }

// binlogSuite fills a real MariaDB binlog (row format) and measures the
// binlog package against mariadb-binlog and the server's own replication
// on the same events.
func binlogSuite(ctx context.Context, dir string, quick bool, log io.Writer) (*Result, error) {
	res := &Result{Started: time.Now()}
	target := int64(500 << 20)
	if quick {
		target = 50 << 20
	}
	// Production-like InnoDB sizes: with the testbed's 32 MB buffer pool
	// and 16 MB redo log, applying 500 MB is mostly page eviction and
	// checkpoint flushing, whose cost varies from run to run more than
	// the appliers differ. Each server gets 1 GB and 1 GB (24 GB here).
	var so []testbed.ServerOptions
	for range 4 {
		so = append(so, testbed.ServerOptions{Extra: []string{"innodb_buffer_pool_size=1G", "innodb_log_file_size=1G"}})
	}
	c, err := testbed.New(dir, testbed.Options{N: 4, NoSSH: true, Servers: so})
	if c != nil {
		defer c.Close()
	}
	if err != nil {
		return nil, err
	}
	// server2: the reference (its own SQL thread); server3: Apply with
	// the default method (statements for these events); server4: Apply
	// through replication.
	m, sqlReplica, applyTarget, replTarget := c.Servers[0], c.Servers[1], c.Servers[2], c.Servers[3]
	if err := m.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test",
		"CREATE TABLE test.b (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(200), n INT)",
		"INSERT INTO test.b (pad, n) SELECT REPEAT(CHAR(65 + seq % 26), 180), seq FROM test.seq_1_to_20000"); err != nil {
		return nil, err
	}
	if err := c.WaitCaughtUp(ctx, time.Minute); err != nil {
		return nil, err
	}
	// server2 keeps fetching but does not apply; server3 stops entirely:
	// both then lack the same events.
	if err := sqlReplica.Exec(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		return nil, err
	}
	for _, s := range []*testbed.Server{applyTarget, replTarget} {
		if err := s.Exec(ctx, "STOP SLAVE"); err != nil {
			return nil, err
		}
	}
	st, err := m.QueryRows(ctx, "SHOW MASTER STATUS")
	if err != nil || len(st) == 0 {
		return nil, fmt.Errorf("show master status: %v", err)
	}
	startFile := st[0]["File"]
	startPos, _ := strconv.ParseUint(st[0]["Position"], 10, 64)
	// What the targets hold before the events, to reset them between rounds.
	startGTID, err := m.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	if err != nil {
		return nil, err
	}
	initial, err := m.QueryRows(ctx, "CHECKSUM TABLE test.b")
	if err != nil || len(initial) != 1 {
		return nil, fmt.Errorf("checksum test.b on %s: %v", m.Name(), err)
	}
	initialSum := initial[0]["Checksum"]
	binlogPath := filepath.Join(m.DataDir, startFile)
	t0 := time.Now()
	for {
		fi, err := os.Stat(binlogPath)
		if err != nil {
			return nil, err
		}
		if fi.Size() >= target {
			break
		}
		if err := m.Exec(ctx, "INSERT INTO test.b (pad, n) SELECT pad, n FROM test.b LIMIT 20000"); err != nil {
			return nil, err
		}
	}
	fi, _ := os.Stat(binlogPath)
	size := fi.Size()
	fmt.Fprintf(log, "binlog: filled %s with %d MB in %v\n", binlogPath, size>>20, time.Since(t0).Round(time.Millisecond))
	res.Add("binlog size", float64(size)/(1<<20), "MB", "row format, 20000-row transactions")
	mb := float64(size) / (1 << 20)

	// Scans of the same file.
	hdr, events, err := timeScan(binlogPath, true)
	if err != nil {
		return nil, err
	}
	full, _, err := timeScan(binlogPath, false)
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	cmd := exec.CommandContext(ctx, "mariadb-binlog", binlogPath)
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("mariadb-binlog: %w", err)
	}
	ref := time.Since(t0)
	res.Add("header scan", mb/hdr.Seconds(), "MB/s", fmt.Sprintf("%d events in %v", events, hdr.Round(time.Millisecond)))
	res.Add("full decode", mb/full.Seconds(), "MB/s", full.Round(time.Millisecond).String())
	res.Add("mariadb-binlog > /dev/null", mb/ref.Seconds(), "MB/s", ref.Round(time.Millisecond).String())
	res.Add("header scan vs mariadb-binlog", ref.Seconds()/hdr.Seconds(), "x", "goal >= 5")
	res.Add("full decode vs mariadb-binlog", ref.Seconds()/full.Seconds(), "x", "")

	// Wait until server2 fetched everything, then find a position ~50 MB
	// before the end in its relay logs (walk, no fast path) and diff.
	if err := waitRead(ctx, sqlReplica, m); err != nil {
		return nil, err
	}
	nearEnd, err := positionBefore(binlogPath, size-min(50<<20, size/2))
	if err != nil {
		return nil, err
	}
	relayFiles, err := binlog.ReadIndex(ctx, binlog.LocalFS{}, filepath.Join(sqlReplica.DataDir, "relay-bin.index"))
	if err != nil {
		return nil, err
	}
	rl := binlog.RelayLogs{FS: binlog.LocalFS{}, Dir: sqlReplica.DataDir, Files: relayFiles, ServerID: uint32(sqlReplica.ServerID)}
	t0 = time.Now()
	rp, err := binlog.FindRelayPosition(ctx, rl, startFile, nearEnd)
	if err != nil {
		return nil, err
	}
	res.Add("find position ~50 MB before the end (walk)", float64(time.Since(t0).Milliseconds()), "ms", rp.String())
	diffPath := filepath.Join(dir, "diff.binlog")
	df, err := os.Create(diffPath)
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	dres, err := binlog.WriteDiff(ctx, rl, rp, df)
	df.Close()
	if err != nil {
		return nil, err
	}
	el := time.Since(t0)
	res.Add("write diff", float64(el.Milliseconds()), "ms", fmt.Sprintf("%d MB, %d transactions", dres.Bytes>>20, dres.Transactions))

	// Both appliers run with the same server settings (same my.cnf from the
	// testbed: log_bin on, log_slave_updates on, so both write their
	// binlog; same sync_binlog and innodb_flush_log_at_trx_commit); check
	// it rather than assume it.
	for _, v := range []string{"@@log_bin", "@@log_slave_updates", "@@sync_binlog", "@@innodb_flush_log_at_trx_commit", "@@binlog_format", "@@innodb_buffer_pool_size"} {
		a, err1 := sqlReplica.QueryString(ctx, "SELECT "+v)
		for _, s := range []*testbed.Server{applyTarget, replTarget} {
			b, err2 := s.QueryString(ctx, "SELECT "+v)
			if err := errors.Join(err1, err2); err != nil {
				return nil, err
			}
			if a != b {
				return nil, fmt.Errorf("%s differs: %s on %s, %s on %s", v, a, sqlReplica.Name(), b, s.Name())
			}
		}
	}

	// The saved tail: the master's binlog from where the targets stopped.
	savedPath := filepath.Join(dir, "saved.binlog")
	sf, err := os.Create(savedPath)
	if err != nil {
		return nil, err
	}
	sres, err := binlog.SaveMasterTail(ctx, binlog.LocalFS{}, m.DataDir, "", startFile, startPos, sf)
	sf.Close()
	if err != nil {
		return nil, err
	}
	amb := float64(sres.Bytes) / (1 << 20)
	want, err := m.QueryRows(ctx, "CHECKSUM TABLE test.b")
	if err != nil {
		return nil, err
	}

	// Three appliers of the same events: the server's own replication
	// (server2's SQL thread on the relay log it fetched), Apply's default
	// method (statements for these events) on server3 and Apply through
	// replication on server4. This machine's speed drifts by up to 2x
	// within minutes (a shared VM: the same apply has cost 10 to 19 s of
	// server CPU), so the appliers take turns on segments of the events
	// (~100 MB, cut at transaction ends): each segment is applied by the
	// three in a row, seconds apart, in an order that rotates, and each
	// applier's time on a segment is compared with the SQL thread's on the
	// same segment. A pass applies every segment, so all the events; the
	// servers are then reset to the state before the events (see
	// resetTarget) for the next pass.
	nseg, passes := 5, 2
	if quick {
		nseg = 2 // and two passes, to test resetTarget
	}
	segs, err := cutSegments(savedPath, dir, nseg)
	if err != nil {
		return nil, err
	}
	type appl struct {
		label     string
		srv       *testbed.Server
		sqlThread bool // the reference
		method    binlog.ApplyMethod
	}
	appliers := []appl{{"server SQL thread", sqlReplica, true, ""}, {"Apply", applyTarget, false, binlog.MethodAuto},
		{"Apply through replication", replTarget, false, binlog.MethodReplication}}
	times := map[string][]float64{} // label -> seconds per segment and pass
	cpus := map[string][]float64{}  // label -> server CPU seconds per segment and pass
	methods := map[string]string{}  // label -> the method Apply used
	for p := 0; p < passes; p++ {
		if p > 0 {
			for _, a := range appliers {
				if err := resetTarget(ctx, a.srv, startFile, startPos, startGTID, initialSum, a.sqlThread); err != nil {
					return nil, err
				}
			}
			if err := waitRead(ctx, sqlReplica, m); err != nil {
				return nil, err
			}
		}
		for i, seg := range segs {
			for k := range appliers {
				a := appliers[(k+i+p)%len(appliers)]
				if err := settle(ctx, c.Servers); err != nil {
					return nil, err
				}
				cpu0 := sampleCPU(a.srv)
				t0 := time.Now()
				method := "SQL thread"
				if a.sqlThread {
					if err := runSQLThreadUntil(ctx, a.srv, startFile, seg.masterPos); err != nil {
						return nil, err
					}
				} else {
					ares, err := binlog.Apply(ctx, binlog.Target{Name: a.srv.Name(), Addr: a.srv.Addr(), User: testbed.MHAUser, Password: testbed.MHAPassword},
						[]string{seg.file}, binlog.ApplyOptions{Method: a.method})
					if err != nil {
						return nil, err
					}
					if ares.Transactions != seg.txs {
						return nil, fmt.Errorf("%s applied %d transactions of %d in segment %d", a.label, ares.Transactions, seg.txs, i+1)
					}
					method = string(ares.Method)
				}
				el := time.Since(t0)
				cpu := sampleCPU(a.srv).since(cpu0)
				if a.sqlThread {
					if err := stopSQLThreadAt(ctx, a.srv, startFile, seg.masterPos); err != nil {
						return nil, err
					}
				}
				methods[a.label] = method
				times[a.label] = append(times[a.label], el.Seconds())
				cpus[a.label] = append(cpus[a.label], cpu.server.Seconds())
				fmt.Fprintf(log, "binlog: pass %d segment %d (%.0f MB): %s (%s) on %s: %v, server CPU %v (busiest thread %v, this process %v)\n",
					p+1, i+1, float64(seg.bytes)/(1<<20), a.label, method, a.srv.Name(), el.Round(time.Millisecond), cpu.server, cpu.busiest, cpu.self)
			}
		}
		// Same events, same result: each table must match the master's.
		for _, a := range appliers {
			got, err := a.srv.QueryRows(ctx, "CHECKSUM TABLE test.b")
			if err != nil {
				return nil, err
			}
			if len(want) != 1 || len(got) != 1 || want[0]["Checksum"] != got[0]["Checksum"] {
				return nil, fmt.Errorf("after pass %d, CHECKSUM TABLE test.b on %s (%s) is %v, the master has %v", p+1, a.srv.Name(), a.label, got, want)
			}
		}
	}
	refT := times["server SQL thread"]
	refCPU := cpus["server SQL thread"]
	n := len(refT)
	res.Add("server SQL thread apply", amb*float64(passes)/sum(refT), "MB/s", fmt.Sprintf("%d passes of %d segments: %s", passes, len(segs), secondsList(refT)))
	res.Add("SQL thread: server CPU", sum(refCPU)/float64(passes), "s", "per pass")
	for _, a := range appliers[1:] {
		t, cpu := times[a.label], cpus[a.label]
		var ratio []float64
		for i := range n {
			ratio = append(ratio, refT[i]/t[i])
		}
		goal := "goal >= 0.8 (the default method)"
		if a.method == binlog.MethodReplication {
			goal = "apply_method=replication"
		}
		res.Add(a.label, amb*float64(passes)/sum(t), "MB/s", fmt.Sprintf("method %s: %s", methods[a.label], secondsList(t)))
		res.Add(a.label+" vs SQL thread", median(ratio), "x", fmt.Sprintf("%s; median of the %d segment ratios %s", goal, n, ratioList(ratio)))
		res.Add(a.label+" vs SQL thread, total time", sum(refT)/sum(t), "x", fmt.Sprintf("%.2fs vs %.2fs", sum(refT), sum(t)))
		res.Add(a.label+": server CPU", sum(cpu)/float64(passes), "s", "per pass")
		res.Add(a.label+" vs SQL thread, server CPU", sum(refCPU)/sum(cpu), "x", "less than 1: the server works more than for the SQL thread alone")
	}
	return res, nil
}

// segment is a part of the saved tail as a binlog file of its own.
type segment struct {
	file      string
	bytes     int64  // event bytes (without the file's header)
	txs       int    // transactions
	masterPos uint64 // where its last transaction ends in the master's binlog
}

// cutSegments cuts the binlog file at path into n files of about equal
// size, at transaction (XID) ends. Each starts with the file's magic
// number and format description event.
func cutSegments(path, dir string, n int) ([]segment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := binlog.NewReader(bytes.NewReader(data), path)
	if err != nil {
		return nil, err
	}
	r.SetHeaderOnly(true)
	type xid struct {
		end int64
		pos uint64
	}
	var xids []xid
	var headEnd, size int64
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch ev.Type {
		case replication.FORMAT_DESCRIPTION_EVENT:
			if headEnd == 0 {
				headEnd = ev.End()
			}
		case replication.XID_EVENT:
			xids = append(xids, xid{ev.End(), uint64(ev.LogPos)})
		}
		size = ev.End()
	}
	if headEnd == 0 || len(xids) < n {
		return nil, fmt.Errorf("%s: %d transactions, cannot cut %d segments", path, len(xids), n)
	}
	var segs []segment
	from, next := headEnd, 0
	for k := 1; k <= n; k++ {
		target := headEnd + (size-headEnd)*int64(k)/int64(n)
		seg := segment{file: filepath.Join(dir, fmt.Sprintf("segment%d.binlog", k))}
		for next < len(xids) && (xids[next].end <= target || k == n) {
			seg.txs++
			seg.masterPos = xids[next].pos
			next++
		}
		if seg.txs == 0 { // a transaction bigger than a segment
			if next == len(xids) {
				return nil, fmt.Errorf("%s: too few transactions to cut %d segments", path, n)
			}
			seg.txs, seg.masterPos = 1, xids[next].pos
			next++
		}
		to := xids[next-1].end
		if k == n {
			to = size
		}
		seg.bytes = to - from
		out := append(append([]byte(nil), data[:headEnd]...), data[from:to]...)
		if err := os.WriteFile(seg.file, out, 0o644); err != nil {
			return nil, err
		}
		segs = append(segs, seg)
		from = to
	}
	return segs, nil
}

// runSQLThreadUntil starts s's SQL thread until the master position pos
// of file and waits until it executed everything before it.
func runSQLThreadUntil(ctx context.Context, s *testbed.Server, file string, pos uint64) error {
	if err := s.Exec(ctx, fmt.Sprintf("START SLAVE SQL_THREAD UNTIL MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d", file, pos)); err != nil {
		return err
	}
	v, err := s.QueryString(ctx, "SELECT MASTER_POS_WAIT(?, ?, 1800)", file, pos)
	if err != nil {
		return err
	}
	if v != "" && v != "-1" {
		return nil
	}
	// NULL: the thread is not running, also when it already stopped at
	// the UNTIL position before the wait began.
	st, err := s.SlaveStatus(ctx)
	if err != nil {
		return err
	}
	if exec, _ := strconv.ParseUint(st["Exec_Master_Log_Pos"], 10, 64); st["Relay_Master_Log_File"] == file && exec >= pos && st["Last_SQL_Error"] == "" {
		return nil
	}
	return fmt.Errorf("%s did not execute up to %s:%d: MASTER_POS_WAIT returned %q; %v", s.Name(), file, pos, v, st)
}

// stopSQLThreadAt stops s's SQL thread and checks that it stopped exactly
// at pos of file. (At the end of the relay log it does not stop by itself:
// the UNTIL condition is checked on the next event.)
func stopSQLThreadAt(ctx context.Context, s *testbed.Server, file string, pos uint64) error {
	if err := s.Exec(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		return err
	}
	st, err := s.SlaveStatus(ctx)
	if err != nil {
		return err
	}
	if exec, _ := strconv.ParseUint(st["Exec_Master_Log_Pos"], 10, 64); st["Slave_SQL_Running"] != "No" || st["Relay_Master_Log_File"] != file || exec != pos {
		return fmt.Errorf("%s: the SQL thread should have stopped at %s:%d: %v", s.Name(), file, pos, st)
	}
	return nil
}

func sum(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}

// resetTarget brings a server back to the state it had before the
// measured events, so that a round can apply them again: test.b with its
// first 20000 rows (as the master made them, checked by checksum), an
// empty binlog whose GTID state is the master's at the start, and for the
// SQL thread's replica, relay logs fetched afresh from the start position.
func resetTarget(ctx context.Context, s *testbed.Server, startFile string, startPos uint64, startGTID, initialSum string, replica bool) error {
	stmts := []string{"STOP SLAVE", "SET SESSION sql_log_bin=0", "DROP TABLE test.b",
		"CREATE TABLE test.b (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(200), n INT)",
		"INSERT INTO test.b (pad, n) SELECT REPEAT(CHAR(65 + seq % 26), 180), seq FROM test.seq_1_to_20000",
		"RESET MASTER", "SET GLOBAL gtid_binlog_state='" + startGTID + "'", "SET GLOBAL gtid_slave_pos='" + startGTID + "'"}
	if replica {
		stmts = append(stmts, "RESET SLAVE",
			fmt.Sprintf("CHANGE MASTER TO MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d", startFile, startPos),
			"START SLAVE IO_THREAD")
	}
	if err := s.Exec(ctx, stmts...); err != nil {
		return fmt.Errorf("reset %s for the next round: %w", s.Name(), err)
	}
	rows, err := s.QueryRows(ctx, "CHECKSUM TABLE test.b")
	if err != nil {
		return err
	}
	if len(rows) != 1 || rows[0]["Checksum"] != initialSum {
		return fmt.Errorf("reset %s: CHECKSUM TABLE test.b is %v, was %s before the events", s.Name(), rows, initialSum)
	}
	return nil
}

func secondsList(v []float64) string {
	var p []string
	for _, x := range v {
		p = append(p, fmt.Sprintf("%.2fs", x))
	}
	return strings.Join(p, " ")
}

func ratioList(v []float64) string {
	var p []string
	for _, x := range v {
		p = append(p, fmt.Sprintf("%.3f", x))
	}
	return strings.Join(p, " ")
}

// settle waits until no server has more than a few dirty InnoDB pages, so
// that one measured run does not pay for the flushing of the run before it
// (two cores here). It makes the servers flush eagerly meanwhile.
func settle(ctx context.Context, servers []*testbed.Server) error {
	for _, s := range servers {
		if err := s.Exec(ctx, "SET GLOBAL innodb_io_capacity_max=100000", "SET GLOBAL innodb_io_capacity=50000",
			"SET GLOBAL innodb_max_dirty_pages_pct=0"); err != nil {
			return err
		}
	}
	defer func() {
		for _, s := range servers {
			s.Exec(ctx, "SET GLOBAL innodb_max_dirty_pages_pct=DEFAULT", "SET GLOBAL innodb_io_capacity=DEFAULT",
				"SET GLOBAL innodb_io_capacity_max=DEFAULT")
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for _, s := range servers {
		for {
			rows, err := s.QueryRows(ctx, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
			if err != nil {
				return err
			}
			// A few pages stay dirty for a while (background statistics
			// and purge): 100 pages (1.6 MB) count as quiet.
			if n, err := strconv.Atoi(rows[0]["Value"]); len(rows) == 1 && err == nil && n < 100 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s still has %v dirty pages after 2 minutes", s.Name(), rows)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// cpuSample is the CPU time used so far by a server's threads and by this
// process, to tell where an apply spends its time (on 2 cores the applier
// and the server compete).
type cpuSample struct {
	threads map[string]time.Duration // mariadbd thread id -> user+system time
	process time.Duration            // mariadbd's total, including threads that ended
	self    time.Duration
}

// cpuUse is the difference of two samples.
type cpuUse struct {
	server, busiest, self time.Duration
}

// sampleCPU reads /proc/<pid>/task/*/stat of s's mariadbd (an empty sample
// if that fails: the figures are then zero, the bench still runs).
func sampleCPU(s *testbed.Server) cpuSample {
	smp := cpuSample{threads: map[string]time.Duration{}}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		smp.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	pid, err := os.ReadFile(filepath.Join(s.Dir, "mysqld.pid"))
	if err != nil {
		return smp
	}
	procDir := filepath.Join("/proc", strings.TrimSpace(string(pid)))
	smp.process, _ = statCPU(filepath.Join(procDir, "stat"))
	taskDir := filepath.Join(procDir, "task")
	tasks, _ := os.ReadDir(taskDir)
	for _, t := range tasks {
		if d, ok := statCPU(filepath.Join(taskDir, t.Name(), "stat")); ok {
			smp.threads[t.Name()] = d
		}
	}
	return smp
}

// statCPU reads utime+stime from a /proc stat file.
func statCPU(path string) (time.Duration, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	// Fields after the parenthesised command: state is field 3, utime
	// and stime are fields 14 and 15, in clock ticks (100 per second).
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, true
}

func (s cpuSample) since(before cpuSample) cpuUse {
	// The process total counts the threads that ended in between (the
	// replication threads of an Apply); busiest is among the live ones.
	u := cpuUse{self: s.self - before.self, server: s.process - before.process}
	for id, d := range s.threads {
		d -= before.threads[id]
		u.busiest = max(u.busiest, d)
	}
	return u
}

func timeScan(path string, headerOnly bool) (time.Duration, int, error) {
	t0 := time.Now()
	r, err := binlog.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	r.SetHeaderOnly(headerOnly)
	n := 0
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return time.Since(t0), n, nil
		}
		if err != nil {
			return 0, n, err
		}
		if !headerOnly {
			if _, err := r.Decode(ev); err != nil {
				return 0, n, err
			}
		}
		n++
	}
}

// positionBefore returns the end position of the last XID event that ends
// before offset.
func positionBefore(path string, offset int64) (uint64, error) {
	r, err := binlog.Open(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	r.SetHeaderOnly(true)
	var pos uint64
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) || (err == nil && ev.Offset > offset) {
			break
		}
		if err != nil {
			return 0, err
		}
		if ev.Type == replication.XID_EVENT {
			pos = uint64(ev.LogPos)
		}
	}
	if pos == 0 {
		return 0, fmt.Errorf("no transaction before offset %d in %s", offset, path)
	}
	return pos, nil
}

// waitRead polls until replica's IO thread read up to the master's position.
func waitRead(ctx context.Context, replica, master *testbed.Server) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		ms, err := master.QueryRows(ctx, "SHOW MASTER STATUS")
		if err != nil || len(ms) == 0 {
			return fmt.Errorf("show master status: %v", err)
		}
		st, err := replica.SlaveStatus(ctx)
		if err != nil {
			return err
		}
		if st["Master_Log_File"] == ms[0]["File"] && st["Read_Master_Log_Pos"] == ms[0]["Position"] {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not fetch the master's binlog: %v", replica.Name(), st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
