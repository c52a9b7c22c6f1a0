package mhacompat

import (
	"fmt"
	"strconv"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// MHA's master-master pair (t_mm*, t_online_mm*) and replication chain
// (t_4tier*, t_*3tier*) scenarios. MHA's configurations: mha_test.cnf is
// "app1" (all five servers), mha_test_multi*.cnf adds multi_tier_slave=1,
// mha_test_mm*.cnf lists only the pair (server1, server2) and
// mha_test_reset.cnf adds skip_reset_slave=1.

func init() {
	for name, run := range tierRunners {
		runners[name] = run
	}
}

func (b *bed) multiConf() string {
	return b.writeConf(conf{name: "multi", defaults: []string{"multi_tier_slave=1"}})
}

func (b *bed) pairConf() string { return b.writeConf(conf{name: "mm", servers: []int{1, 2}}) }

func (b *bed) resetConf() string {
	return b.writeConf(conf{name: "reset", defaults: []string{"skip_reset_slave=1"}})
}

// replicateFrom points s at m from m's current binlog position (file and
// position, as MHA's scripts do with get_binlog_position) and waits until
// both threads run. s keeps its read_only.
func (b *bed) replicateFrom(s, m *testbed.Server) {
	b.t.Helper()
	rows, err := m.QueryRows(b.ctx, "SHOW MASTER STATUS")
	if err != nil || len(rows) != 1 {
		b.failf("SHOW MASTER STATUS on %s: %v (%d rows)", m.Name(), err, len(rows))
	}
	pos, _ := strconv.Atoi(rows[0]["Position"])
	b.sql(s, "STOP SLAVE", fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', "+
		"MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=no, MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d",
		m.Host, m.Port, testbed.ReplUser, testbed.ReplPassword, rows[0]["File"], pos), "START SLAVE")
	if err := s.WaitReplicating(b.ctx, 30*time.Second); err != nil {
		b.failf("%s replicating from %s: %v", s.Name(), m.Name(), err)
	}
}

// pair makes the master replicate from S1: a master-master pair (MHA's
// CHANGE MASTER on $M to $S1P).
func (b *bed) pair() { b.replicateFrom(b.M, b.S[1]) }

// pairWithS1Stopped is the mm_subm_dead scenarios' start: the pair, one
// row written and replicated everywhere, then S1 (read_only) stopped.
func (b *bed) pairWithS1Stopped() {
	b.pair()
	b.insert(b.M, 2, 2)
	b.caughtUp(b.S[1:]...)
	b.readOnly(true, b.S[1])
	b.stop(b.S[1])
}

// readOnly sets read_only on each server.
func (b *bed) readOnly(on bool, servers ...*testbed.Server) {
	b.t.Helper()
	v := 0
	if on {
		v = 1
	}
	for _, s := range servers {
		b.sql(s, fmt.Sprintf("SET GLOBAL read_only=%d", v))
	}
}

// run is MHA's run.sh (masterha_manager) while the master runs: the
// manager's start-up check, that is check-repl.
func (b *bed) run(cnf string) int { return b.checkRepl(cnf) }

// failoverOf is a dead-master failover of dead (MHA's manager after it
// found the primary master dead).
func (b *bed) failoverOf(cnf string, dead *testbed.Server) int {
	b.t.Helper()
	_, code := b.mhactl("failover", "--local", "--conf", cnf, "--dead-master-host", dead.Host,
		"--dead-master-port", strconv.Itoa(dead.Port), "--interactive=0", "--ignore-last-failover")
	return code
}

// waitSQL polls until s's Slave_SQL_Running is want.
func (b *bed) waitSQL(s *testbed.Server, want string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := b.sqlRunning(s)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			b.failf("Slave_SQL_Running on %s is %q, MHA expects %q; %s", s.Name(), got, want, b.topology())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// chain makes S2 replicate from S1 and, with s3, S3 from S2 (MHA's t_4tier).
func (b *bed) chain(s3 bool) {
	b.t.Helper()
	b.replicateFrom(b.S[2], b.S[1])
	if s3 {
		b.replicateFrom(b.S[3], b.S[2])
	}
}

var tierRunners = map[string]func(b *bed){
	"4tier": func(b *bed) {
		cnf, multi := b.writeConf(conf{name: "app1"}), b.multiConf()
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.chain(true)
		b.readOnly(false, b.S[1], b.S[2]) // MHA's sandbox replicas are writable
		b.wantMaster(b.S[1], b.M)
		b.wantMaster(b.S[2], b.S[1])
		b.wantMaster(b.S[3], b.S[2])
		b.wantMaster(b.S[4], b.M)
		b.insert(b.M, 3, 3)
		b.caughtUp(b.S[1:]...)
		b.wantFail("check of the chain", b.checkRepl(cnf))
		b.wantFail("check of the chain, multi-tier, S1 and S2 writable", b.checkRepl(multi))
		b.readOnly(true, b.S[1])
		b.wantFail("check of the chain, S1 read_only", b.checkRepl(cnf))
		b.wantFail("manager start, S1 read_only", b.run(cnf))
		b.wantFail("check of the chain, multi-tier, S2 writable", b.checkRepl(multi))
		b.readOnly(true, b.S[2])
		b.wantFail("check of the chain, S1 and S2 read_only", b.checkRepl(cnf))
		b.wantFail("manager start, S1 and S2 read_only", b.run(cnf))
		b.wantOK("check of the chain, multi-tier, S1 and S2 read_only", b.checkRepl(multi))
		b.kill()
		b.wantOK("failover, multi-tier", b.failover(multi))
		b.wantMaster(b.S[2], b.S[1])
		b.wantMaster(b.S[3], b.S[2])
		b.wantMaster(b.S[4], b.S[1])
		b.insert(b.S[1], 10000003, 10000003)
		b.check(4)
	},
	"4tier_subm_dead": func(b *bed) {
		cnf, multi := b.writeConf(conf{name: "app1"}), b.multiConf()
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.chain(true)
		b.readOnly(false, b.S[1], b.S[2])
		b.insert(b.M, 3, 3)
		b.caughtUp(b.S[1:]...)
		b.wantFail("check of the chain", b.checkRepl(cnf))
		b.wantFail("check of the chain, multi-tier", b.checkRepl(multi))
		b.readOnly(true, b.S[1])
		b.wantFail("check, S1 read_only", b.checkRepl(cnf))
		b.wantFail("manager start, S1 read_only", b.run(cnf))
		b.wantFail("check, multi-tier, S2 writable", b.checkRepl(multi))
		b.stop(b.S[2])
		b.wantFail("check, S2 stopped", b.checkRepl(cnf))
		b.wantFail("manager start, S2 stopped", b.run(cnf))
		b.wantFail("check, multi-tier, S2 stopped", b.checkRepl(multi))
		b.kill()
		b.wantFail("failover, multi-tier, S2 stopped", b.failover(multi))
	},
	"mm": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.readOnly(false, b.S[1]) // MHA's sandbox replicas are writable
		b.pair()
		b.wantFail("check, both of the pair writable", b.checkRepl(cnf))
		b.wantFail("manager start, both writable", b.run(cnf))
		b.readOnly(true, b.S[1], b.M)
		b.wantFail("check, both of the pair read_only", b.checkRepl(cnf))
		b.wantFail("manager start, both read_only", b.run(cnf))
		b.readOnly(false, b.S[1])
		b.wantFail("check, only S1 writable", b.checkRepl(cnf))
		b.readOnly(true, b.S[1])
		b.readOnly(false, b.M)
		b.wantOK("check, only the master writable", b.checkRepl(cnf))
		b.insert(b.M, 2, 6)
		b.caughtUp(b.S[1:]...)
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(7)
	},
	"mm_3tier": func(b *bed) {
		cnf, multi := b.writeConf(conf{name: "app1"}), b.multiConf()
		b.pair()
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.readOnly(true, b.S[1])
		b.chain(false)
		b.wantMaster(b.S[2], b.S[1])
		b.wantFail("check, S2 below S1", b.checkRepl(cnf))
		b.wantFail("manager start, S2 below S1", b.run(cnf))
		b.kill()
		b.wantFail("check after the kill", b.checkRepl(cnf))
		b.wantFail("failover, S2 below S1 without multi_tier_slave", b.failover(cnf))
		b.wantFail("check after the kill, multi-tier", b.checkRepl(multi))
		b.wantOK("failover, multi-tier", b.failover(multi))
		b.wantMaster(b.S[2], b.S[1])
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3)
	},
	"mm_3tier_subm_dead": func(b *bed) {
		cnf, multi := b.writeConf(conf{name: "app1"}), b.multiConf()
		b.pair()
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.readOnly(true, b.S[1])
		b.chain(false)
		b.wantMaster(b.S[2], b.S[1])
		b.stop(b.S[1])
		b.wantFail("check, S1 stopped", b.checkRepl(cnf))
		b.wantFail("manager start, S1 stopped", b.run(cnf))
		b.wantFail("check, multi-tier, S1 stopped", b.checkRepl(multi))
		b.wantFail("manager start, multi-tier, S1 stopped", b.run(multi))
		b.readOnly(true, b.M)
		b.wantFail("check, S1 stopped, the master read_only", b.checkRepl(cnf))
		b.wantFail("manager (failover of the stopped S1), the master read_only", b.failoverOf(cnf, b.S[1]))
		b.kill()
		b.wantFail("check after the kill", b.checkRepl(cnf))
		b.wantFail("failover after the kill, S1 stopped", b.failover(cnf))
		b.wantFail("check after the kill, multi-tier", b.checkRepl(multi))
		b.wantFail("failover after the kill, multi-tier, S1 stopped", b.failover(multi))
	},
	"mm_normal": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.pair()
		b.insert(b.M, 2, 2)
		b.readOnly(true, b.S[1])
		b.insert(b.M, 3, 3)
		b.caughtUp(b.S[1:]...)
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(4)
	},
	"mm_normal_skip_reset": func(b *bed) {
		reset := b.resetConf()
		b.pair()
		b.insert(b.M, 2, 2)
		b.readOnly(true, b.S[1])
		b.insert(b.M, 3, 3)
		b.caughtUp(b.S[1:]...)
		b.kill()
		b.wantOK("failover, skip_reset_slave", b.failover(reset))
		b.insert(b.S[1], 10000003, 10000003)
		b.start(b.M)                 // MHA's force_start_m.sh
		b.sql(b.M, "START SLAVE")    // MHA's sandbox master starts its replication on start-up
		b.wantMaster(b.S[1], b.M)    // S1 kept its replication settings
		b.waitSQL(b.S[1], "No")      // left stopped
		b.sql(b.S[1], "START SLAVE") // the pair resumes
		b.waitSQL(b.S[1], "Yes")
		b.readOnly(false, b.M)
		b.insert(b.M, 10000004, 10000004)
		b.check(5, b.M, b.S[2], b.S[3], b.S[4])
	},
	"mm_noslaves": func(b *bed) {
		mm := b.pairConf()
		b.readOnly(false, b.S[1])
		b.pair()
		b.wantFail("check, both writable", b.checkRepl(mm))
		b.wantFail("manager start, both writable", b.run(mm))
		b.readOnly(true, b.S[1], b.M)
		b.wantFail("check, both read_only", b.checkRepl(mm))
		b.wantFail("manager start, both read_only", b.run(mm))
		b.readOnly(false, b.M)
		b.wantOK("check, only the master writable", b.checkRepl(mm))
		b.insert(b.M, 2, 6)
		b.caughtUp(b.S[1])
		b.kill()
		b.wantOK("failover of the pair", b.failover(mm))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(7, b.S[1])
	},
	"mm_ro_fail": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.readOnly(false, b.S[1])
		b.pair()
		b.wantFail("check, both writable", b.checkRepl(cnf))
		b.wantFail("manager start, both writable", b.run(cnf))
		b.readOnly(true, b.S[1], b.M)
		b.wantFail("check, both read_only", b.checkRepl(cnf))
		b.wantFail("manager start, both read_only", b.run(cnf))
	},
	"mm_subm_dead": func(b *bed) {
		cnf, multi := b.writeConf(conf{name: "app1"}), b.multiConf()
		b.pairWithS1Stopped()
		b.wantFail("check, S1 stopped", b.checkRepl(cnf))
		b.wantFail("manager start, S1 stopped", b.run(cnf))
		b.wantFail("check, multi-tier, S1 stopped", b.checkRepl(multi))
		b.wantFail("manager start, multi-tier, S1 stopped", b.failoverOf(multi, b.S[1]))
		b.readOnly(true, b.M)
		b.wantFail("check, the master read_only", b.checkRepl(cnf))
		b.wantFail("manager (failover of the stopped S1), the master read_only", b.failoverOf(cnf, b.S[1]))
		b.wantFail("check, multi-tier, the master read_only", b.checkRepl(multi))
		b.wantOK("manager (failover of the stopped S1), multi-tier, the master read_only", b.failoverOf(multi, b.S[1]))
		b.insert(b.M, 10000003, 10000003)
		b.check(3, b.M)
	},
	"mm_subm_dead_many": func(b *bed) {
		cnf, multi := b.writeConf(conf{name: "app1"}), b.multiConf()
		b.pairWithS1Stopped()
		b.wantFail("check, S1 stopped", b.checkRepl(cnf))
		b.wantFail("manager start, S1 stopped", b.run(cnf))
		b.wantFail("check, multi-tier, S1 stopped", b.checkRepl(multi))
		b.wantFail("manager, multi-tier, S1 stopped", b.failoverOf(multi, b.S[1]))
		b.readOnly(true, b.M)
		b.wantFail("check, the master read_only", b.checkRepl(cnf))
		b.wantFail("manager (failover of the stopped S1), the master read_only", b.failoverOf(cnf, b.S[1]))
		b.stop(b.S[2])
		b.wantFail("check, multi-tier, S2 stopped too", b.checkRepl(multi))
		b.wantFail("manager (failover of the stopped S1), multi-tier, S2 stopped too", b.failoverOf(multi, b.S[1]))
		b.insert(b.M, 10000003, 10000003)
		b.check(3, b.M)
	},
	"mm_subm_dead_noslave": func(b *bed) {
		mm, multi := b.pairConf(), b.multiConf()
		b.pairWithS1Stopped()
		b.wantFail("check of the pair, S1 stopped", b.checkRepl(mm))
		b.wantFail("dead-master failover of the running master, multi-tier", b.failover(multi))
		b.wantOK("manager of the pair (failover of the stopped S1)", b.failoverOf(mm, b.S[1]))
		b.insert(b.M, 10000003, 10000003)
		b.check(3, b.M)
	},
	"online_3tier": func(b *bed) {
		cnf, multi := b.writeConf(conf{name: "app1"}), b.multiConf()
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.chain(false)
		b.wantMaster(b.S[2], b.S[1])
		b.readOnly(false, b.S[1]) // MHA's sandbox replicas are writable
		b.wantFail("switch, S2 below S1", b.switchTo(cnf, b.S[1]))
		b.wantFail("switch, multi-tier, S1 writable", b.switchTo(multi, b.S[1]))
		b.readOnly(true, b.S[1])
		b.wantFail("switch, S1 read_only", b.switchTo(cnf, b.S[1]))
		b.wantOK("switch, multi-tier, S1 read_only", b.switchTo(multi, b.S[1]))
		b.wantMaster(b.S[2], b.S[1])
		b.insert(b.S[1], 10000003, 10000003)
		b.wantCount(b.M, 2)
		b.check(3)
	},
	"online_3tier_slave": func(b *bed) {
		cnf, multi := b.writeConf(conf{name: "app1"}), b.multiConf()
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.chain(false)
		b.wantMaster(b.S[2], b.S[1])
		b.readOnly(false, b.S[1])
		b.wantFail("switch, S2 below S1", b.switchTo(cnf, b.S[1]))
		b.wantFail("switch, multi-tier, S1 writable", b.switchTo(multi, b.S[1]))
		b.readOnly(true, b.S[1])
		b.wantFail("switch, S1 read_only", b.switchTo(cnf, b.S[1]))
		b.wantOK("switch, multi-tier, old master a new replica", b.switchTo(multi, b.S[1], "--orig-master-is-new-slave"))
		b.wantMaster(b.S[2], b.S[1])
		b.wantMaster(b.M, b.S[1])
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3, b.M)
		b.check(3)
	},
	"online_3tier_slave_keep": func(b *bed) {
		mm := b.writeConf(conf{name: "mm_online", servers: []int{1, 2}})
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.chain(false)
		b.wantMaster(b.S[2], b.S[1])
		b.insert(b.M, 3, 3)
		b.caughtUp(b.S[1:]...)
		b.wantOK("switch of the pair's configuration, old master a new replica", b.switchTo(mm, b.S[1], "--orig-master-is-new-slave"))
		b.wantMaster(b.S[2], b.S[1])
		b.wantMaster(b.M, b.S[1])
		b.wantMaster(b.S[3], b.M)
		b.wantMaster(b.S[4], b.M)
		b.insert(b.S[1], 10000003, 10000003)
		b.check(4, b.M)
		b.check(4)
	},
	"online_mm": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.readOnly(false, b.S[1])
		b.pair()
		b.wantFail("switch, both writable", b.switchTo(cnf, b.S[1]))
		b.readOnly(true, b.S[1], b.M)
		b.wantFail("switch, both read_only", b.switchTo(cnf, b.S[1]))
		b.readOnly(false, b.M)
		b.wantOK("switch, only the master writable", b.switchTo(cnf, b.S[1]))
		b.wantMaster(b.M, b.S[1]) // still in the pair
		b.insert(b.S[1], 10000003, 10000003)
		b.check(2)
		b.check(2, b.M)
	},
	"online_mm_3tier": func(b *bed) {
		cnf, multi := b.writeConf(conf{name: "app1"}), b.multiConf()
		b.pair()
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.readOnly(true, b.S[1])
		b.chain(false)
		b.wantMaster(b.S[2], b.S[1])
		b.wantFail("switch, S2 below S1", b.switchTo(cnf, b.S[1]))
		b.wantOK("switch, multi-tier", b.switchTo(multi, b.S[1]))
		b.wantMaster(b.S[2], b.S[1])
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3, b.M) // the old master already replicates from the new one
		b.check(3)
	},
	"online_mm_3tier_slave": func(b *bed) {
		cnf, multi := b.writeConf(conf{name: "app1"}), b.multiConf()
		b.pair()
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.readOnly(true, b.S[1])
		b.chain(false)
		b.wantMaster(b.S[2], b.S[1])
		b.wantFail("switch, S2 below S1", b.switchTo(cnf, b.S[1], "--orig-master-is-new-slave"))
		b.wantOK("switch, multi-tier", b.switchTo(multi, b.S[1], "--orig-master-is-new-slave"))
		b.wantMaster(b.S[2], b.S[1])
		b.wantMaster(b.M, b.S[1])
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3, b.M)
		b.check(3)
	},
	"online_mm_skip_reset": func(b *bed) {
		reset := b.resetConf()
		b.pair()
		b.readOnly(false, b.M)
		b.readOnly(true, b.S[1])
		b.wantOK("switch, skip_reset_slave, old master a new replica", b.switchTo(reset, b.S[1], "--orig-master-is-new-slave"))
		b.insert(b.S[1], 10000003, 10000003)
		b.wantMaster(b.S[1], b.M) // kept its replication settings
		b.waitSQL(b.S[1], "No")
		b.sql(b.S[1], "START SLAVE")
		b.waitSQL(b.S[1], "Yes")
		b.readOnly(false, b.M)
		b.insert(b.M, 10000004, 10000004)
		b.check(3, b.M, b.S[2], b.S[3], b.S[4])
	},
}
