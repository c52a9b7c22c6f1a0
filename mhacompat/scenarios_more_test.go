package mhacompat

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// gtidScenarios run on a test bed whose replicas use MariaDB GTID
// (MASTER_USE_GTID=slave_pos), MHA's GTID auto-positioning runs.
var gtidScenarios = map[string]bool{
	"no_relay_log_gtid": true,
	"save_binlog_gtid":  true,
}

// The scaled-down sizes of MHA's large_data scenarios: 100,000 rows become
// largeRows, 1,000,000 become hugeRows (the machine runs other work; the
// shape of the transactions is MHA's).
const (
	largeRows = 20000
	hugeRows  = 20000
)

func init() {
	for name, run := range moreRunners {
		runners[name] = run
	}
}

// ignoreConf is MHA's mha_test_ignore.cnf: ignore_fail on S3 and S4
// (server4 and server5).
func (b *bed) ignoreConf() string {
	b.t.Helper()
	return b.writeConf(conf{name: "ignore", extra: map[int][]string{4: {"ignore_fail=1"}, 5: {"ignore_fail=1"}}})
}

// tinyRelayLogs is MHA's "set global max_relay_log_size=8192" on every
// replica, with MHA's sandbox default relay_log_purge=1 (the test bed's
// servers start with 0); keep lists the replicas MHA sets to 0.
func (b *bed) tinyRelayLogs(size int, keep ...*testbed.Server) {
	b.t.Helper()
	for _, s := range b.S[1:] {
		purge := "1"
		for _, k := range keep {
			if k == s {
				purge = "0"
			}
		}
		b.sql(s, fmt.Sprintf("SET GLOBAL max_relay_log_size=%d", size), "SET GLOBAL relay_log_purge="+purge)
	}
}

var moreRunners = map[string]func(b *bed){
	"ignore_nostart": func(b *bed) {
		cnf := b.ignoreConf()
		b.stop(b.S[4])
		// MHA's manager refuses to start; mharaft's check-repl passes and
		// warns about the unreachable ignore_fail replica (catalogue: Differs).
		out, code := b.mhactl("check-repl", "--conf", cnf)
		b.wantOK("check with the ignore_fail replica S4 stopped", code)
		if !strings.Contains(out, "[warning] server5") {
			b.failf("check with the ignore_fail replica S4 stopped does not warn about server5:\n%s", out)
		}
		b.kill()
		b.wantFail("check (manager start) after the kill with S4 stopped", b.checkRepl(cnf))
	},
	"ignore_recovery1": func(b *bed) {
		cnf := b.ignoreConf()
		b.insert(b.M, 100, 100)
		b.caughtUp(b.S[1:]...)
		b.stop(b.S[4])
		b.kill()
		b.wantOK("failover with the ignore_fail replica S4 stopped", b.failover(cnf))
		b.start(b.S[4])
		b.insert(b.S[1], 10000003, 10000003)
		b.wantMaster(b.S[4], b.M)
		b.wantCount(b.S[4], 2)
		b.check(3, b.S[1], b.S[2], b.S[3])
	},
	"ignore_recovery2": ignoreRecovery(1, false),
	"ignore_recovery3": ignoreRecovery(2, false),
	"ignore_recovery4": ignoreRecovery(2, true),
	"apply_many_logs":  applyManyLogs(2000, 3),
	"apply_many_logs2": applyManyLogs(3000, 1, 2, 3, 4),
	"apply_many_logs3": applyManyLogs(3000, 4),
	"no_relay_log": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.tinyRelayLogs(8192)
		b.insert(b.M, 2, 1000)
		b.caughtUp(b.S[1:]...)
		b.stopIO(b.S[1])
		b.insert(b.M, 1001, 3000)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.wantFail("failover when S1's events are only in purged relay logs", b.failover(cnf))
		for _, s := range b.S[1:] {
			b.wantMaster(s, b.M)
		}
	},
	"no_relay_log_gtid": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.tinyRelayLogs(8192)
		b.insert(b.M, 2, 1000)
		b.caughtUp(b.S[1:]...)
		b.stopIO(b.S[1])
		b.insert(b.M, 1001, 3000)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.wantOK("failover under GTID", b.failover(cnf))
		for _, s := range b.S[2:] {
			b.wantMaster(s, b.S[1])
		}
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3001)
	},
	"needsync_fail": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.tinyRelayLogs(1 << 30)
		b.stopIO(b.S[1])
		b.sql(b.M, "FLUSH LOGS")
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.wantFail("failover when S1's missing events precede the relay logs kept", b.failover(cnf))
	},
	"latest_recovery3": func(b *bed) {
		cnf := b.writeConf(conf{name: "latest", defaults: []string{"latest_priority=0"}})
		b.tinyRelayLogs(1<<30, b.S[4])
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.stopIO(b.S[1])
		b.sql(b.M, "FLUSH LOGS")
		b.insert(b.M, 3, 4)
		b.caughtUp(b.S[2:]...)
		b.stopIO(b.S[2], b.S[3])
		b.insert(b.M, 5, 5)
		b.caughtUp(b.S[4])
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		m := b.newMaster()
		b.wantAllFrom(m)
		b.insert(m, 10000003, 10000003)
		b.check(6)
	},
	"needsync_2_nobinlog":  needsync2(appConf()),
	"needsync_1_pass":      needsync1(shellConf("pass")),
	"needsync_2_pass":      needsync2(shellConf("pass")),
	"save_master_log_pass": saveMasterLog(shellConf("pass")),
	"online_slave_pass": func(b *bed) {
		cnf := shellConf("online_pass")(b)
		b.wantOK("switch --orig-master-is-new-slave as the shell-metacharacter account", b.switchTo(cnf, b.S[1], "--orig-master-is-new-slave"))
		b.insert(b.S[1], 10000003, 10000003)
		b.wantMaster(b.M, b.S[1])
		b.check(2, b.M, b.S[1], b.S[2], b.S[3], b.S[4])
	},
	"needsync_1_nopass": func(b *bed) {
		b.createUser("admin", "", false)
		cnf := b.writeConf(conf{name: "nopass", user: "admin"})
		b.wantOK("check as an account without a password", b.checkRepl(cnf))
		b.stopIO(b.S[1])
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.wantOK("failover as an account without a password", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3)
	},
	"large_data":           largeData(func(b *bed) { b.insertTx(b.M, 1001, largeRows, 0) }, false),
	"large_data_tran":      largeData(func(b *bed) { b.insertTx(b.M, 1001, largeRows, 1000) }, false),
	"large_data_bulk":      largeData(bulkWithUpdates, false),
	"large_data_bulk_slow": largeData(bulkWithUpdates, true),
	"large_data_slow":      largeData(func(b *bed) { b.insertTx(b.M, 1001, largeRows, 0) }, true),
	"large_data_slow2": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.all(b.S[1:], "SET GLOBAL relay_log_purge=0")
		b.sql(b.S[3], "FLUSH LOGS", "FLUSH LOGS")
		b.insert(b.M, 2, 1000)
		b.caughtUp(b.S[1:]...)
		b.stopIO(b.S[1])
		b.insert(b.M, 1001, hugeRows)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		m := b.newMaster()
		b.wantAllFrom(m)
		b.insert(m, 10000003, 10000003)
		b.check(hugeRows + 1)
	},
	"large_data_slow3": func(b *bed) {
		cnf := b.writeConf(conf{name: "large", defaults: []string{"check_repl_delay=0"}})
		b.all(b.S[1:], "SET GLOBAL relay_log_purge=0")
		b.sql(b.S[3], "FLUSH LOGS", "FLUSH LOGS")
		b.all(b.S[1:], "STOP SLAVE SQL_THREAD")
		b.insert(b.M, 2, 1000)
		b.waitReceived(b.S[1])
		b.stopIO(b.S[1])
		b.insert(b.M, 1001, hugeRows)
		for _, s := range b.S[2:] {
			b.waitReceived(s)
		}
		b.kill()
		b.wantOK("failover tolerating the delay (check_repl_delay=0)", b.failover(cnf))
		b.wantAllFrom(b.S[1])
		b.insert(b.S[1], 10000003, 10000003)
		b.check(hugeRows + 1)
	},
	"large_data_sql_stop": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.all(b.S[1:], "SET GLOBAL relay_log_purge=0")
		b.sql(b.S[3], "FLUSH LOGS", "FLUSH LOGS")
		b.insert(b.M, 2, 1000)
		b.caughtUp(b.S[1:]...)
		b.sql(b.S[2], "STOP SLAVE SQL_THREAD")
		b.insertTx(b.M, 1001, largeRows, 1000)
		// The check's code is asserted last so that the failover is still tried.
		checkCode := b.checkRepl(cnf)
		if r := b.sqlRunning(b.S[2]); r != "No" {
			b.failf("S2's SQL thread is %q after the check, MHA expects it left stopped", r)
		}
		b.caughtUp(b.S[1], b.S[3], b.S[4])
		b.waitReceived(b.S[2])
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(largeRows + 1)
		b.wantOK("check (manager start) with S2's SQL thread stopped without error (asserted last)", checkCode)
	},
	"large_data_sql_fail": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.all(b.S[1:], "SET GLOBAL relay_log_purge=0")
		b.sql(b.S[3], "FLUSH LOGS", "FLUSH LOGS")
		b.insert(b.M, 2, 1000)
		b.caughtUp(b.S[1:]...)
		b.sql(b.S[2], "STOP SLAVE SQL_THREAD", fmt.Sprintf("INSERT INTO test.t1 VALUES (%d, 100, '100')", largeRows-50))
		b.insertTx(b.M, 1001, largeRows, 1000)
		b.checkRepl(cnf) // the manager's start; it must leave S2's SQL thread stopped
		if r := b.sqlRunning(b.S[2]); r != "No" {
			b.failf("S2's SQL thread is %q after the check, MHA expects it left stopped", r)
		}
		b.caughtUp(b.S[1], b.S[3], b.S[4])
		b.waitReceived(b.S[2])
		b.kill()
		b.wantFail("failover with S2 unable to apply a conflicting row", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.wantMaster(b.S[2], b.M)
		// MHA: S2 applies the transactions before the conflicting one (99,001 of 100,000 rows).
		b.wantCount(b.S[2], largeRows-999)
		b.check(largeRows+1, b.S[1], b.S[3], b.S[4])
	},
	"binary": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.sql(b.M, "CREATE TABLE test.binfile (bin_data BLOB) CHARSET=latin1", "DROP TABLE test.t1")
		b.caughtUp(b.S[1:]...)
		b.sql(b.S[2], "STOP SLAVE")
		// Bytes 0..255 (NUL, CR, LF, quotes, backslash, high latin1) as one value.
		var blob []byte
		for i := 0; i < 256; i++ {
			blob = append(blob, byte(i))
		}
		if _, err := b.M.Root().ExecContext(b.ctx, "INSERT INTO test.binfile (bin_data) VALUES (?)", blob); err != nil {
			b.failf("insert the binary row: %v", err)
		}
		want := fmt.Sprintf("%x", blob)
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		for _, s := range b.S[1:] {
			got, err := s.QueryString(b.ctx, "SELECT LOWER(HEX(bin_data)) FROM test.binfile")
			if err != nil || got != want {
				b.failf("%s holds %q (%v) in test.binfile, MHA expects the 256 bytes byte-exact", s.Name(), got, err)
			}
		}
		b.checkTable("test.binfile", 1)
	},
	"recover_master_fail": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.stopIO(b.S[1], b.S[3])
		b.insert(b.M, 2, 6)
		b.sql(b.S[1], "INSERT INTO test.t1 VALUES (4, 200, 'aaaaaa')")
		b.caughtUp(b.S[2], b.S[4])
		b.kill()
		b.wantFail("failover whose new master cannot apply a conflicting row", b.failover(cnf))
		for _, s := range b.S[2:] {
			b.wantMaster(s, b.M)
		}
		b.wantCount(b.S[1], 4)
		b.wantCount(b.S[2], 6)
		b.wantCount(b.S[3], 1)
	},
	"recover_slave_fail":  recoverSlaveFail(false),
	"recover_slave_fail2": recoverSlaveFail(true),
	"slave_sql_start2": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.insert(b.M, 10, 11)
		b.caughtUp(b.S[1:]...)
		b.sql(b.S[1], "INSERT INTO test.t1 VALUES (100, 100, '100')")
		b.sql(b.M, "INSERT INTO test.t1 VALUES (100, 100, '100')")
		b.waitSQLStopped(b.S[1])
		b.wantFail("check with S1's SQL thread stopped on an error", b.checkRepl(cnf))
		b.wantFail("failover while the master is alive", b.failover(cnf))
		b.sql(b.S[1], "DELETE FROM test.t1 WHERE id=100")
		b.wantFail("check with S1's SQL thread still stopped", b.checkRepl(cnf))
		b.sql(b.S[1], "START SLAVE SQL_THREAD")
		b.caughtUp(b.S[1:]...)
		b.wantOK("check with S1 repaired", b.checkRepl(cnf))
		b.kill()
		b.failover(cnf)
		if r := b.sqlRunning(b.S[2]); r != "Yes" {
			b.failf("S2's SQL thread is %q after the failover, MHA expects it running", r)
		}
		b.insert(b.S[1], 10000003, 10000003)
		b.check(5)
	},
	"slave_sql_start3": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.sql(b.S[2], "STOP SLAVE SQL_THREAD", "INSERT INTO test.t1 VALUES (100, 100, '100')")
		b.sql(b.M, "INSERT INTO test.t1 VALUES (100, 100, '100')")
		b.checkRepl(cnf) // the manager's start; it must leave S2's SQL thread stopped
		if r := b.sqlRunning(b.S[2]); r != "No" {
			b.failf("S2's SQL thread is %q after the check, MHA expects it left stopped", r)
		}
		b.caughtUp(b.S[1], b.S[3], b.S[4])
		b.waitReceived(b.S[2])
		b.kill()
		b.failover(cnf)
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3, b.S[1], b.S[3], b.S[4])
	},
	"data_io_error": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.insert(b.M, 100, 100)
		b.caughtUp(b.S[1:]...)
		b.stopIO(b.S[1:]...)
		b.insert(b.M, 101, 101)
		// MHA's monitor starts here despite the stopped IO threads; the
		// check's code is asserted last so that the failover is still tried.
		checkCode := b.checkRepl(cnf)
		b.kill()
		b.moveBinlogsAway(b.M)
		b.wantOK("failover with the dead master's binlogs gone", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3)
		b.wantOK("check (manager start) with every IO thread stopped (asserted last)", checkCode)
	},
	"dual_master_error": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.sql(b.S[1], "STOP SLAVE", "RESET SLAVE", "SET GLOBAL read_only=0")
		mm := b.pairConf()
		b.wantFail("check of the pair's configuration, S1 replicating from nobody", b.checkRepl(mm))
		b.wantFail("manager start, pair's configuration", b.run(mm))
		b.wantFail("check with S1 a second writable server replicating from nobody", b.checkRepl(cnf))
		b.wantFail("dead-master failover while both are alive", b.failover(cnf))
	},
	"online_busy": func(b *bed) {
		cnf := b.writeConf(conf{name: "online"})
		b.wantOK("switch --check-only", b.switchTo(cnf, b.S[1], "--orig-master-is-new-slave", "--check-only"))
		b.wantMaster(b.S[1], b.M)
		stopLong := b.longQueries(b.S[1], 15, "SELECT SLEEP(100)")
		b.waitRunning(b.S[1], "SELECT SLEEP(100)", 15, 2)
		code := b.switchTo(cnf, b.S[1], "--orig-master-is-new-slave", "--running-seconds-limit=1")
		stopLong()
		b.wantFail("switch while 15 long queries run on the new master", code)
		b.wantMaster(b.S[1], b.M)
		stopLock := b.longQueries(b.M, 1, "LOCK TABLES test.t1 WRITE", "SELECT SLEEP(100)")
		b.waitRunning(b.M, "SELECT SLEEP(100)", 1, 0)
		stopWait := b.longQueries(b.M, 1, "LOCK TABLES test.t1 WRITE")
		b.waitRunning(b.M, "LOCK TABLES test.t1 WRITE", 1, 2)
		code = b.switchTo(cnf, b.S[1], "--orig-master-is-new-slave", "--running-updates-limit=1")
		stopWait()
		stopLock()
		b.wantFail("switch while a table lock waits on the master", code)
		b.wantMaster(b.S[1], b.M)
		b.wantOK("switch once the master is idle", b.switchTo(cnf, b.S[1], "--orig-master-is-new-slave"))
		b.insert(b.S[1], 10000003, 10000003)
		b.wantMaster(b.M, b.S[1])
		b.check(2, b.M, b.S[1], b.S[2], b.S[3], b.S[4])
	},
	"online_filter": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		restartIO := func() {
			for _, s := range b.S[1:] {
				b.sql(s, "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD")
			}
			b.caughtUp(b.S[1:]...)
		}
		b.stop(b.M)
		b.start(b.M, "replicate-do-table=test.aaa")
		restartIO()
		b.wantFail("switch --orig-master-is-new-slave with a filter on the master only", b.switchTo(cnf, b.S[1], "--orig-master-is-new-slave"))
		if st, err := b.M.SlaveStatus(b.ctx); err != nil || st != nil {
			b.failf("the old master has replication settings after the refused switch (%v): MHA expects none", err)
		}
		b.stop(b.M)
		b.start(b.M)
		restartIO()
		b.wantOK("switch without the filter", b.switchTo(cnf, b.S[1]))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(2)
	},
	"new_master_heavy":      newMasterHeavy("0"),
	"new_master_heavy_wait": newMasterHeavy("1"),
	"needsync_binlog": func(b *bed) {
		copyDir := b.t.TempDir()
		cnf := b.writeConf(conf{name: "binlog", binlogs: []string{copyDir}})
		b.insert(b.M, 2, 1000)
		b.caughtUp(b.S[1:]...)
		b.stopIO(b.S[3], b.S[4])
		b.insert(b.M, 1001, 2700)
		b.caughtUp(b.S[1], b.S[2])
		b.stopIO(b.S[1], b.S[2])
		b.insert(b.M, 2701, 3000)
		b.insert(b.M, 99999, 99999)
		b.kill()
		b.copyBinlogs(b.M, copyDir)
		b.wantOK("failover with a binlog server", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.wantMaster(b.S[3], b.S[1])
		b.wantMaster(b.S[4], b.S[1])
		b.check(3002)
	},
	"save_binlog_gtid": func(b *bed) {
		nowhere := b.t.TempDir()
		good := b.t.TempDir()
		// server1's master_binlog_dir points at an empty directory: mharaft
		// would otherwise read the dead master's binlog over SSH, which MHA
		// does not do under GTID; the binlog servers are the only source.
		away := func(text string) string {
			return strings.Replace(text, "master_binlog_dir="+b.M.DataDir+"\n", "master_binlog_dir="+nowhere+"\n", 1)
		}
		wrong1 := b.writeConf(conf{name: "gtid_fail1", edit: away, binlogs: []string{nowhere + "/x"}})
		wrong2 := b.writeConf(conf{name: "gtid_fail2", edit: away, binlogs: []string{nowhere + "/x", nowhere + "/y"}})
		ok := b.writeConf(conf{name: "gtid_ok", edit: away, binlogs: []string{nowhere + "/x", good}})
		b.stopIO(b.S[1:]...)
		b.insert(b.M, 2, 6)
		b.kill()
		b.copyBinlogs(b.M, good)
		b.wantFail("failover with a binlog server in a wrong directory", b.failover(wrong1))
		b.wantFail("failover with two binlog servers in wrong directories", b.failover(wrong2))
		b.wantOK("failover with a binlog server holding the binlog", b.failover(ok))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(7)
	},
}

// newMasterHeavy is t_new_master_heavy and t_new_master_heavy_wait: a
// 200-second SELECT runs on S1 (read_only as given: 0 in MHA's sandbox, 1
// in the _wait variant) when the master shuts down.
func newMasterHeavy(readOnly string) func(b *bed) {
	return func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.sql(b.S[1], "SET GLOBAL read_only="+readOnly)
		stop := b.longQueries(b.S[1], 1, "SELECT *, SLEEP(200) FROM test.t1")
		defer stop()
		b.waitRunning(b.S[1], "SLEEP(200)", 1, 0)
		b.stop(b.M)
		start := time.Now()
		b.wantOK("failover while a 200-second SELECT runs on S1", b.failover(cnf))
		if d := time.Since(start); d > 50*time.Second {
			b.failf("the failover took %v, MHA expects it not to wait for the SELECT (50 s)", d)
		}
		stop()
		b.insert(b.S[1], 10000003, 10000003)
		b.check(2)
	}
}

// copyBinlogs copies s's binlog files (and index) into dir.
func (b *bed) copyBinlogs(s *testbed.Server, dir string) {
	b.t.Helper()
	matches, err := filepath.Glob(s.BinlogBase() + ".*")
	if err != nil || len(matches) == 0 {
		b.failf("no binlog files at %s (%v)", s.BinlogBase(), err)
	}
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(m)), data, 0o644)
		}
		if err != nil {
			b.failf("copy %s to %s: %v", m, dir, err)
		}
	}
}

// ignoreRecovery is t_ignore_recovery2..4: tiny relay logs that are purged,
// behind replicas (S3, and S4 when two) with ignore_fail whose missing
// events no relay log holds any more; extra writes one more row.
func ignoreRecovery(behind int, extra bool) func(b *bed) {
	return func(b *bed) {
		cnf := b.ignoreConf()
		b.tinyRelayLogs(8192)
		b.insert(b.M, 2, 1000)
		b.caughtUp(b.S[1:]...)
		lagging := b.S[3 : 3+behind]
		b.stopIO(lagging...)
		b.insert(b.M, 1001, 3000)
		want := 3001
		if extra {
			b.insert(b.M, 99999, 99999)
			want++
		}
		var current []*testbed.Server
		for _, s := range b.S[1:] {
			if s != b.S[3] && (behind == 1 || s != b.S[4]) {
				current = append(current, s)
			}
		}
		b.caughtUp(current...)
		b.kill()
		b.failover(cnf)
		b.insert(b.S[1], 10000003, 10000003)
		for _, s := range lagging {
			b.wantMaster(s, b.M)
		}
		b.check(want, current...)
	}
}

// applyManyLogs is t_apply_many_logs{,2,3}: 8 KB relay logs (many files),
// S1 stopped half-way; keep names the replicas (1..4) with relay_log_purge=0.
func applyManyLogs(rows int, keep ...int) func(b *bed) {
	return func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		var kept []*testbed.Server
		for _, k := range keep {
			kept = append(kept, b.S[k])
		}
		b.tinyRelayLogs(8192, kept...)
		b.insert(b.M, 2, 1000)
		b.caughtUp(b.S[1:]...)
		b.stopIO(b.S[1])
		b.insert(b.M, 1001, rows)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		// MHA writes on S2 in apply_many_logs without GTID and on S1
		// otherwise: the suite writes on the master mharaft elected.
		m := b.newMaster()
		b.wantAllFrom(m)
		b.insert(m, 10000003, 10000003)
		b.check(rows + 1)
	}
}

// largeData is t_large_data{,_tran,_bulk,_bulk_slow,_slow}: S1 (IO thread
// stopped after 1000 rows) lacks what load writes; slow uses 64 KB relay
// logs everywhere, otherwise S3 flushes its relay log twice.
func largeData(load func(b *bed), slow bool) func(b *bed) {
	return func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.all(b.S[1:], "SET GLOBAL relay_log_purge=0")
		if slow {
			b.all(b.S[1:], "SET GLOBAL max_relay_log_size=65536")
		} else {
			b.sql(b.S[3], "FLUSH LOGS", "FLUSH LOGS")
		}
		b.insert(b.M, 2, 1000)
		b.caughtUp(b.S[1:]...)
		b.stopIO(b.S[1])
		load(b)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(largeRows + 1)
	}
}

// bulkWithUpdates is MHA's bulk_tran_insert.pl plus its four large UPDATEs,
// scaled: multi-row INSERTs of 1000 rows, one transaction each, then
// UPDATEs of the first four fifths in four ranges.
func bulkWithUpdates(b *bed) {
	b.t.Helper()
	var stmts []string
	for from := 1001; from <= largeRows; from += 1000 {
		to := min(from+999, largeRows)
		var vals []string
		for id := from; id <= to; id++ {
			vals = append(vals, fmt.Sprintf("(%d, %d, 'aaaaaaa')", id, id))
		}
		stmts = append(stmts, "INSERT INTO test.t1 VALUES "+strings.Join(vals, ","))
	}
	step := largeRows / 10
	for i := 0; i < 4; i++ {
		stmts = append(stmts, fmt.Sprintf("UPDATE test.t1 SET value = value+%d WHERE id BETWEEN %d AND %d", 100*(i+1), i*step+1, (i+1)*step))
	}
	b.sql(b.M, stmts...)
}

// recoverSlaveFail is t_recover_slave_fail{,2}: S3 (and S4) hold a row that
// conflicts with what they miss; they stay on the old master.
func recoverSlaveFail(two bool) func(b *bed) {
	return func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		bad := []*testbed.Server{b.S[3]}
		if two {
			bad = append(bad, b.S[4])
		}
		b.stopIO(bad...)
		b.insert(b.M, 2, 6)
		b.sql(b.S[3], "INSERT INTO test.t1 VALUES (4, 200, 'aaaaaa')")
		good := []*testbed.Server{b.S[1], b.S[2], b.S[4]}
		if two {
			b.sql(b.S[4], "INSERT INTO test.t1 VALUES (5, 200, 'aaaaaa')")
			good = good[:2]
		}
		b.caughtUp(good...)
		b.kill()
		b.wantFail("failover with a replica that cannot apply a conflicting row", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.wantMaster(b.S[3], b.M)
		b.wantCount(b.S[3], 4)
		if two {
			b.wantMaster(b.S[4], b.M)
			b.wantCount(b.S[4], 5)
		}
		b.check(7, good...)
	}
}

// waitReceived waits until s's IO thread has read everything the master
// wrote (its SQL thread may be stopped).
func (b *bed) waitReceived(s *testbed.Server) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ms, err1 := b.M.QueryRows(b.ctx, "SHOW MASTER STATUS")
		st, err2 := s.SlaveStatus(b.ctx)
		if err1 == nil && err2 == nil && len(ms) == 1 && st != nil &&
			st["Master_Log_File"] == ms[0]["File"] && st["Read_Master_Log_Pos"] == ms[0]["Position"] {
			return
		}
		if time.Now().After(deadline) {
			b.failf("%s did not receive the master's binlog within 60 s (%v %v)", s.Name(), err1, err2)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitSQLStopped waits until s's SQL thread has stopped (on an error).
func (b *bed) waitSQLStopped(s *testbed.Server) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for b.sqlRunning(s) != "No" {
		if time.Now().After(deadline) {
			b.failf("%s's SQL thread did not stop within 30 s", s.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkTable is check for another table: S1..S4 converge on want rows and
// one checksum.
func (b *bed) checkTable(table string, want int) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sums := map[string]bool{}
		ok := true
		var state []string
		for _, s := range b.S[1:] {
			v, _ := s.QueryString(b.ctx, "SELECT COUNT(*) FROM "+table)
			n, _ := strconv.Atoi(v)
			sum := "?"
			if rows, err := s.QueryRows(b.ctx, "CHECKSUM TABLE "+table); err == nil && len(rows) == 1 {
				sum = rows[0]["Checksum"]
			}
			sums[sum] = true
			ok = ok && n == want
			state = append(state, fmt.Sprintf("%s: %d rows checksum %s", s.Name(), n, sum))
		}
		if ok && len(sums) == 1 {
			return
		}
		if time.Now().After(deadline) {
			b.failf("%s differs from MHA's expectation (%d rows, one checksum): %s", table, want, strings.Join(state, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// longQueries runs n connections on s, each running stmts in turn (the
// last one long); the returned func kills them and waits for them.
func (b *bed) longQueries(s *testbed.Server, n int, stmts ...string) func() {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ids := make(chan int64, n)
	for i := 0; i < n; i++ {
		conn, err := s.Root().Conn(b.ctx)
		if err != nil {
			cancel()
			b.failf("connect to %s: %v", s.Name(), err)
		}
		var id int64
		if err := conn.QueryRowContext(b.ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			cancel()
			b.failf("connection id on %s: %v", s.Name(), err)
		}
		ids <- id
		wg.Add(1)
		go func(conn *sql.Conn) {
			defer wg.Done()
			defer conn.Close()
			defer conn.Raw(func(any) error { return driver.ErrBadConn })
			for _, q := range stmts {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					return
				}
			}
		}(conn)
	}
	close(ids)
	var once sync.Once
	return func() {
		once.Do(func() {
			for id := range ids {
				s.Exec(context.Background(), fmt.Sprintf("KILL %d", id)) //nolint:errcheck // already gone is fine
			}
			cancel()
			wg.Wait()
		})
	}
}

// waitRunning waits until n statements containing text have run on s for
// at least seconds.
func (b *bed) waitRunning(s *testbed.Server, text string, n, seconds int) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := s.QueryString(b.ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND TIME >= ? AND ID <> CONNECTION_ID()", "%"+text+"%", seconds)
		if c, _ := strconv.Atoi(v); err == nil && c >= n {
			return
		}
		if time.Now().After(deadline) {
			b.failf("%d statements %q did not run %d s on %s within 30 s (%v)", n, text, seconds, s.Name(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// moveBinlogsAway moves s's binlog files out of its datadir (MHA's
// data_io_error: the dead master's binlogs cannot be read).
func (b *bed) moveBinlogsAway(s *testbed.Server) {
	b.t.Helper()
	matches, err := filepath.Glob(s.BinlogBase() + ".*")
	if err != nil || len(matches) == 0 {
		b.failf("no binlog files at %s (%v)", s.BinlogBase(), err)
	}
	away := b.t.TempDir()
	for _, m := range matches {
		if err := os.Rename(m, filepath.Join(away, filepath.Base(m))); err != nil {
			b.failf("move %s away: %v", m, err)
		}
	}
}
