package mhacompat

// runners re-enact MHA's scenarios, keyed by MHA's name. Each follows
// MHA's script step by step: S[1] is MHA's S1 (port 10001), and so on.
var runners = map[string]func(b *bed){
	// A kill with every replica current: the failover succeeds.
	"normal_crash": func(b *bed) {
		// MHA first runs masterha_secondary_check (alive, then dead): mharaft's
		// detector has no stand-alone secondary check command; the rest is the same.
		cnf := b.writeConf(conf{name: "app1"})
		b.kill()
		b.wantOK("failover after the kill", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(2)
	},
	"normal_crash_nocm": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.sql(b.S[1], "SET GLOBAL read_only=1")
		b.kill()
		b.wantOK("failover --skip-change-master --skip-disable-read-only", b.failover(cnf, "--skip-change-master", "--skip-disable-read-only"))
		b.wantNoCM()
		b.check(1)
	},
	"needsync_1_nocm": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.stopIO(b.S[1])
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[2:]...)
		b.sql(b.S[1], "SET GLOBAL read_only=1")
		b.kill()
		b.wantOK("failover --skip-change-master --skip-disable-read-only", b.failover(cnf, "--skip-change-master", "--skip-disable-read-only"))
		b.wantNoCM()
		b.check(2) // S1 caught up from S2's relay log though nobody was repointed
	},
	"needsync_1":      needsync1(appConf()),
	"needsync_1_ssh":  needsync1(appConf("ssh_connection_timeout=20")),
	"needsync_2":      needsync2(appConf()),
	"needsync_2_ssh":  needsync2(appConf("ssh_connection_timeout=20")),
	"needsync_flush":  needsyncFlush(1, false, 3),
	"needsync_flush2": needsyncFlush(2, false, 6),
	"needsync_flush3": needsyncFlush(3, true, 7),
	"needsync_flush_slave": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.stopIO(b.S[1])
		for _, s := range b.S[2:] {
			b.sql(s, "SET GLOBAL relay_log_purge=0", "FLUSH LOGS", "FLUSH LOGS", "FLUSH LOGS", "FLUSH LOGS", "FLUSH LOGS")
		}
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.failover(cnf)
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3)
	},
	"recover_slave_ok": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.stopIO(b.S[3], b.S[4])
		b.insert(b.M, 2, 6)
		b.caughtUp(b.S[1], b.S[2])
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(7)
	},
	"save_master_log":     saveMasterLog(appConf()),
	"save_master_log_ssh": saveMasterLog(appConf("ssh_connection_timeout=20")),
	"latest_recovery1": func(b *bed) {
		cnf := b.writeConf(conf{name: "latest", defaults: []string{"latest_priority=0"}})
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.stopIO(b.S[1])
		b.insert(b.M, 3, 4)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(5)
	},
	"latest_recovery2": func(b *bed) {
		cnf := b.writeConf(conf{name: "latest", defaults: []string{"latest_priority=0"}})
		b.sql(b.S[4], "SET GLOBAL relay_log_purge=0")
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.stopIO(b.S[1])
		b.sql(b.M, "FLUSH LOGS")
		b.insert(b.M, 3, 4)
		b.caughtUp(b.S[2:]...)
		b.stopIO(b.S[2])
		b.insert(b.M, 5, 5)
		b.caughtUp(b.S[3:]...)
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		// MHA writes on S2, the server it elects; mharaft elects S1 (catalogue: Differs).
		m := b.newMaster()
		b.wantAllFrom(m)
		b.insert(m, 10000003, 10000003)
		b.check(6)
	},
	"manual": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[1:]...)
		b.wantFail("dead-master failover while the master is alive", b.failover(cnf))
		b.kill()
		b.stop(b.S[1])
		b.wantFail("dead-master failover while S1 is down", b.failover(cnf))
		b.start(b.S[1])
		b.wantOK("dead-master failover with S1 back", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3)
	},
	"slave_stop": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.stop(b.S[1])
		b.wantFail("check with S1 stopped (manager start)", b.checkRepl(cnf))
		b.start(b.S[1])
		b.kill()
		b.failover(cnf)
		b.insert(b.S[1], 10000003, 10000003)
		b.check(2)
	},
	"conf": func(b *bed) {
		noMaster := b.writeConf(conf{name: "err1", servers: []int{2, 3, 4, 5}})
		onlyMaster := b.writeConf(conf{name: "err2", servers: []int{1}})
		b.wantFail("check with a configuration lacking the master", b.checkRepl(noMaster))
		b.wantFail("check with a configuration of the master only", b.checkRepl(onlyMaster))
	},
	"online_normal": func(b *bed) {
		noMaster := b.writeConf(conf{name: "err1", servers: []int{2, 3, 4, 5}})
		onlyMaster := b.writeConf(conf{name: "err2", servers: []int{1}})
		cnf := b.writeConf(conf{name: "app1"})
		b.wantFail("switch with a configuration lacking the master", b.switchTo(noMaster, b.S[1]))
		b.wantFail("switch with a configuration of the master only", b.switchTo(onlyMaster, b.S[1]))
		b.wantOK("switch", b.switchTo(cnf, b.S[1]))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(2)
	},
	"online_slave": func(b *bed) {
		cnf := b.writeConf(conf{name: "online"})
		b.wantOK("switch --orig-master-is-new-slave", b.switchTo(cnf, b.S[1], "--orig-master-is-new-slave"))
		b.insert(b.S[1], 10000003, 10000003)
		b.wantMaster(b.M, b.S[1])
		b.check(2, b.M, b.S[1], b.S[2], b.S[3], b.S[4])
	},
	"online_slave_fail": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1", noRepl: true})
		b.wantFail("switch --orig-master-is-new-slave without repl_user", b.switchTo(cnf, b.S[1], "--orig-master-is-new-slave"))
		// mharaft refuses before changing anything (catalogue: Differs):
		// the old master stays the master and its row reaches every replica.
		if st, err := b.M.SlaveStatus(b.ctx); err != nil || st != nil {
			b.failf("the old master replicates after the refused switch (%v): it must stay the master", err)
		}
		b.wantAllFrom(b.M)
		b.insert(b.M, 10000003, 10000003)
		b.check(2, b.M, b.S[1], b.S[2], b.S[3], b.S[4])
	},
	"online_slave_sql_stop": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.sql(b.S[2], "STOP SLAVE SQL_THREAD")
		b.wantFail("switch while S2's SQL thread is stopped", b.switchTo(cnf, b.S[1]))
		b.sql(b.S[2], "START SLAVE SQL_THREAD")
		b.wantOK("switch with S2's SQL thread running", b.switchTo(cnf, b.S[1]))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(2)
	},
	"filter_incorrect": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		for _, opt := range []string{"binlog-do-db=aaa", "replicate-ignore-db=aaa", "replicate-do-table=aaa.t"} {
			b.stop(b.S[1])
			b.start(b.S[1], opt)
			b.wantFail("check with S1 started with "+opt, b.checkRepl(cnf))
		}
	},
	"slave_incorrect": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.stopIO(b.S[1])
		for _, s := range b.S[2:] {
			b.sql(s, "SET GLOBAL relay_log_purge=0", "FLUSH LOGS", "FLUSH LOGS", "FLUSH LOGS", "FLUSH LOGS", "FLUSH LOGS")
		}
		b.insert(b.M, 2, 2)
		b.sql(b.S[3], "STOP SLAVE", "RESET SLAVE ALL")
		b.wantFail("check with S3 not replicating", b.checkRepl(cnf))
		b.kill()
		b.wantFail("check after the kill with S3 not replicating", b.checkRepl(cnf))
		b.wantFail("failover with S3 not replicating", b.failover(cnf))
	},
	"keep_relay_log_purge": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.sql(b.S[1], "SET GLOBAL relay_log_purge=1")
		b.sql(b.S[2], "SET GLOBAL relay_log_purge=1")
		b.sql(b.S[3], "SET GLOBAL relay_log_purge=0")
		b.sql(b.S[4], "SET GLOBAL relay_log_purge=0")
		b.stopIO(b.S[1])
		b.sql(b.M, "FLUSH LOGS")
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.failover(cnf)
		b.insert(b.S[2], 10000003, 10000003)
		for i, want := range []string{"1", "1", "0", "0"} {
			s := b.S[i+1]
			got, err := s.QueryString(b.ctx, "SELECT @@global.relay_log_purge")
			if err != nil || got != want {
				b.failf("%s relay_log_purge=%s (%v), MHA expects %s", s.Name(), got, err, want)
			}
		}
		b.check(3)
	},
	"slave_sql_start": func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		b.sql(b.S[2], "STOP SLAVE SQL_THREAD")
		b.insert(b.M, 100, 100)
		b.checkRepl(cnf) // MHA's monitor start; it must not start S2's SQL thread
		if r := b.sqlRunning(b.S[2]); r != "No" {
			b.failf("S2's SQL thread is %q after the check, MHA expects it left stopped", r)
		}
		b.caughtUp(b.S[1], b.S[3], b.S[4])
		b.kill()
		b.failover(cnf)
		if r := b.sqlRunning(b.S[2]); r != "Yes" {
			b.failf("S2's SQL thread is %q after the failover, MHA expects it running", r)
		}
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3)
	},
}

// appConf writes MHA's usual configuration with extra [server default]
// lines.
func appConf(defaults ...string) func(b *bed) string {
	return func(b *bed) string { return b.writeConf(conf{name: "app1", defaults: defaults}) }
}

// shellConf creates a manager account whose name and password hold shell
// metacharacters and writes a configuration (named name) that uses it.
func shellConf(name string) func(b *bed) string {
	return func(b *bed) string {
		b.createUser(shellUser, shellPassword, true)
		pw := shellPassword
		return b.writeConf(conf{name: name, user: shellUser, password: &pw})
	}
}

// needsync1 is t_needsync_1 (and its _ssh and _pass variants): S1 misses
// one row.
func needsync1(writeConf func(b *bed) string) func(b *bed) {
	return func(b *bed) {
		cnf := writeConf(b)
		b.stopIO(b.S[1])
		b.insert(b.M, 2, 2)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3)
	}
}

// needsync2 is t_needsync_2: S1 misses 2000 of 3000 rows.
func needsync2(writeConf func(b *bed) string) func(b *bed) {
	return func(b *bed) {
		cnf := writeConf(b)
		b.sql(b.S[4], "SET GLOBAL relay_log_purge=0")
		b.insert(b.M, 2, 1000)
		b.caughtUp(b.S[1:]...)
		b.stopIO(b.S[1])
		b.insert(b.M, 1001, 3000)
		b.caughtUp(b.S[2:]...)
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(3001)
	}
}

// needsyncFlush is t_needsync_flush{,2,3}: S1 behind across a rotation of
// the master's binlog; variant 2 and 3 write rows whose text says
// ROLLBACK; variant 3 also stops S2 before the last row.
func needsyncFlush(variant int, s2Behind bool, want int) func(b *bed) {
	return func(b *bed) {
		cnf := b.writeConf(conf{name: "app1"})
		keeper := b.S[3]
		if variant == 2 {
			keeper = b.S[2]
		}
		b.sql(keeper, "SET GLOBAL relay_log_purge=0")
		b.stopIO(b.S[1])
		b.sql(b.M, "FLUSH LOGS")
		b.insert(b.M, 2, 2)
		if variant > 1 {
			b.sql(b.M, "INSERT INTO test.t1 VALUES (3, 300, 'ROLLBACK')",
				"INSERT INTO test.t1 VALUES (4, 400, 'Test\nROLLBACK')",
				"INSERT INTO test.t1 VALUES (5, 500, 'bbbbb')")
		}
		b.caughtUp(b.S[2:]...)
		if s2Behind {
			b.stopIO(b.S[2])
			b.insert(b.M, 6, 6)
			b.caughtUp(b.S[3:]...)
		}
		b.kill()
		b.failover(cnf)
		// MHA writes on the server it elects (S2, or S3 in variant 3);
		// mharaft elects S1 (catalogue: Differs): write on its new master.
		m := b.newMaster()
		b.wantAllFrom(m)
		b.insert(m, 10000003, 10000003)
		b.check(want)
	}
}

// saveMasterLog is t_save_master_log: every replica misses five rows that
// only the dead master's binlog holds (reachable over SSH).
func saveMasterLog(writeConf func(b *bed) string) func(b *bed) {
	return func(b *bed) {
		cnf := writeConf(b)
		b.stopIO(b.S[1:]...)
		b.insert(b.M, 2, 6)
		b.kill()
		b.wantOK("failover", b.failover(cnf))
		b.insert(b.S[1], 10000003, 10000003)
		b.check(7)
	}
}
