package jepsen

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// glRow writes one general_log.CSV row as MariaDB's CSV engine does.
func glRow(ms int, userHost string, thread int, command, arg string) string {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`).Replace
	return fmt.Sprintf("\"%s\",\"%s\",%d,1,\"%s\",\"%s\"\n", at(ms).Local().Format("2006-01-02 15:04:05.000000"),
		esc(userHost), thread, command, esc(arg))
}

func mgr(ip string) string { return "mha[mha] @  [" + ip + "]" }

func TestParseGeneralLogCSV(t *testing.T) {
	text := glRow(0, "[mha] @  [10.0.0.21]", 5, "Connect", "mha@10.0.0.21 on  using TCP/IP") +
		glRow(1, mgr("10.0.0.21"), 5, "Query", "SELECT 'a\"b\\c\nd', 1") +
		glRow(2, "root[root] @ localhost []", 3, "Query", "SET GLOBAL read_only=0") +
		glRow(3, "", 5, "Query", "STOP SLAVE") + // no user_host: taken from the Connect row
		`"2026-11-25 12:00:00.004000","mha[mha] @  [10.0.0.21]",5,1,"Query","INSERT INTO t VAL` // cut by a kill
	recs, err := ParseGeneralLogCSV([]byte(text), time.Local)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4 (the cut one ignored): %+v", len(recs), recs)
	}
	want := []GenLogRecord{
		{At: at(0), User: "mha", IP: "10.0.0.21", Thread: 5, Command: "Connect", Argument: "mha@10.0.0.21 on  using TCP/IP"},
		{At: at(1), User: "mha", IP: "10.0.0.21", Thread: 5, Command: "Query", Argument: "SELECT 'a\"b\\c\nd', 1"},
		{At: at(2), User: "root", IP: "", Thread: 3, Command: "Query", Argument: "SET GLOBAL read_only=0"},
		{At: at(3), User: "mha", IP: "10.0.0.21", Thread: 5, Command: "Query", Argument: "STOP SLAVE"},
	}
	for i := range want {
		if !recs[i].At.Equal(want[i].At) {
			t.Errorf("record %d at %s, want %s", i, recs[i].At, want[i].At)
		}
		recs[i].At = want[i].At
	}
	if !reflect.DeepEqual(recs, want) {
		t.Fatalf("records\n%+v\nwant\n%+v", recs, want)
	}
}

func TestIsStateChange(t *testing.T) {
	for _, tc := range []struct {
		cmd, arg string
		want     bool
	}{
		{"Query", "SELECT 1", false},
		{"Query", "SHOW SLAVE STATUS", false},
		{"Query", "SET NAMES utf8mb4", false},
		{"Query", "SET SESSION sql_log_bin=0", false},
		{"Query", "set  global read_only = 1", true},
		{"Query", "SET @@GLOBAL.gtid_slave_pos='0-1-5'", true},
		{"Query", "/* mharaft */ CHANGE MASTER TO MASTER_HOST='x'", true},
		{"Query", "start slave", true},
		{"Query", "STOP SLAVE IO_THREAD", true},
		{"Query", "RESET SLAVE ALL", true},
		{"Query", "FLUSH TABLES WITH READ LOCK", true},
		{"Query", "KILL 42", true},
		{"Query", "BINLOG 'AAAA'", true},
		{"Query", "INSERT INTO jepsen.big VALUES (1)", true},
		{"Query", "INSERT INTO infra.chk_masterha VALUES (1, unix_timestamp()) ON DUPLICATE KEY UPDATE val=1", false},
		{"Query", "CREATE DATABASE IF NOT EXISTS infra", false},
		{"Execute", "DELETE FROM t", true},
		// One row can hold a batch of statements (the binlog applier's).
		{"Query", "SET @@session.gtid_domain_id=0, @@session.server_id=1, @@session.gtid_seq_no=7;BEGIN;BINLOG 'AAA';COMMIT", true},
		{"Query", "SELECT 'x;INSERT INTO t VALUES (1)'; /* ; DELETE */ SELECT 2; SHOW MASTER STATUS", false},
		{"Query", "SELECT \"a\\\";b\"; SET GLOBAL read_only=1", true},
		{"Shutdown", "", true},
		{"Kill", "42", true},
		{"Connect", "mha@x on", false},
		{"Quit", "", false},
	} {
		if got := IsStateChange(tc.cmd, tc.arg); got != tc.want {
			t.Errorf("IsStateChange(%q, %q) = %v, want %v", tc.cmd, tc.arg, got, tc.want)
		}
	}
}

// TestOneActorCaught replays the general logs of two servers in the cases
// the checker must tell apart: a clean handover (the first leader killed,
// the second takes over), and the deposed leader of issue 12 (paused
// mid-apply, another manager finishes, the old one wakes and applies its
// remaining transactions to the new master).
func TestOneActorCaught(t *testing.T) {
	actors := map[string]string{"10.0.0.21": "m1", "10.0.0.22": "m2", "10.0.0.23": "m3"}
	workload := glRow(0, "app[app] @  [10.0.0.254]", 9, "Query", "INSERT INTO jepsen.w (id, writer) VALUES (1, 0)")
	harness := glRow(0, "root[root] @ localhost []", 3, "Query", "CHANGE MASTER TO MASTER_HOST='x'")
	monitor := glRow(0, mgr("10.0.0.23"), 7, "Query", "SELECT 1") +
		glRow(9000, mgr("10.0.0.23"), 7, "Query", "SHOW SLAVE STATUS")
	for _, tc := range []struct {
		name       string
		s2, s3     string
		violations []string // "A/B"
	}{
		{"one manager acts", workload + harness + monitor +
			glRow(1000, mgr("10.0.0.21"), 5, "Query", "STOP SLAVE") +
			glRow(1500, mgr("10.0.0.21"), 5, "Query", "BINLOG 'x'") +
			glRow(1600, mgr("10.0.0.21"), 5, "Query", "SET GLOBAL read_only=0"),
			glRow(1700, mgr("10.0.0.21"), 6, "Query", "CHANGE MASTER TO MASTER_HOST='10.0.0.12'"), nil},
		{"clean handover after a kill", workload +
			glRow(1000, mgr("10.0.0.21"), 5, "Query", "STOP SLAVE") +
			glRow(1500, mgr("10.0.0.21"), 5, "Query", "BINLOG 'x'") +
			glRow(5000, mgr("10.0.0.22"), 8, "Query", "BINLOG 'y'") +
			glRow(5100, mgr("10.0.0.22"), 8, "Query", "SET GLOBAL read_only=0"),
			glRow(5200, mgr("10.0.0.22"), 6, "Query", "CHANGE MASTER TO MASTER_HOST='10.0.0.12'"), nil},
		{"deposed leader wakes up and applies again", workload +
			glRow(1000, mgr("10.0.0.21"), 5, "Query", "STOP SLAVE") +
			glRow(1500, mgr("10.0.0.21"), 5, "Query", "INSERT INTO jepsen.big VALUES (1)") +
			glRow(5000, mgr("10.0.0.22"), 8, "Query", "INSERT INTO jepsen.big VALUES (1)") +
			glRow(5100, mgr("10.0.0.22"), 8, "Query", "SET GLOBAL read_only=0") +
			glRow(30000, mgr("10.0.0.21"), 5, "Query", "INSERT INTO jepsen.big VALUES (2)"),
			glRow(5200, mgr("10.0.0.22"), 6, "Query", "CHANGE MASTER TO MASTER_HOST='10.0.0.12'"),
			[]string{"m1/m2", "m1/m2"}},
		{"partitioned leader repoints a replica while the new leader promotes", workload +
			glRow(5000, mgr("10.0.0.22"), 8, "Query", "SET GLOBAL read_only=0"),
			glRow(1000, mgr("10.0.0.21"), 6, "Query", "STOP SLAVE") +
				glRow(6000, mgr("10.0.0.21"), 6, "Query", "CHANGE MASTER TO MASTER_HOST='10.0.0.13'"),
			[]string{"m1/m2"}},
		// Round 173 of the 2026-12-07 campaign: m1 acts (run a), m2 takes
		// over (run b), m1 is elected again and acts in a new run (c),
		// each run after the previous one's last change.
		{"leadership handed back and forth, one run at a time", workload +
			glRow(900, mgr("10.0.0.21"), 5, "Query", tagged("a")) +
			glRow(1000, mgr("10.0.0.21"), 5, "Query", "STOP SLAVE") +
			glRow(1500, mgr("10.0.0.21"), 5, "Query", "BINLOG 'x'") +
			glRow(4900, mgr("10.0.0.22"), 8, "Query", tagged("b")) +
			glRow(5000, mgr("10.0.0.22"), 8, "Query", "BINLOG 'y'") +
			glRow(7900, mgr("10.0.0.21"), 12, "Query", tagged("c")) +
			glRow(7950, mgr("10.0.0.21"), 12, "Query", "KILL CONNECTION 8") +
			glRow(8000, mgr("10.0.0.21"), 12, "Query", "SET GLOBAL read_only=0"),
			glRow(5200, mgr("10.0.0.22"), 6, "Query", tagged("b")) +
				glRow(5300, mgr("10.0.0.22"), 6, "Query", "CHANGE MASTER TO MASTER_HOST='10.0.0.12'"), nil},
		{"a deposed run of a manager acts beside its own new run", workload +
			glRow(900, mgr("10.0.0.21"), 5, "Query", tagged("a")) +
			glRow(1000, mgr("10.0.0.21"), 5, "Query", "STOP SLAVE") +
			glRow(7900, mgr("10.0.0.21"), 12, "Query", tagged("c")) +
			glRow(8000, mgr("10.0.0.21"), 12, "Query", "SET GLOBAL read_only=0") +
			glRow(9000, mgr("10.0.0.21"), 5, "Query", "INSERT INTO jepsen.big VALUES (2)"),
			"", []string{"m1/m1"}},
		{"a rogue client outside the cluster", workload +
			glRow(1000, mgr("10.0.0.21"), 5, "Query", "STOP SLAVE") +
			glRow(3000, mgr("10.0.0.21"), 5, "Query", "SET GLOBAL read_only=0"),
			glRow(2000, mgr("10.0.0.254"), 11, "Query", "CHANGE MASTER TO MASTER_HOST='10.0.0.11'"),
			[]string{"m1/10.0.0.254"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var spans []ActorSpan
			for srv, text := range map[string]string{"server2": tc.s2, "server3": tc.s3} {
				recs, err := ParseGeneralLogCSV([]byte(text), time.Local)
				if err != nil {
					t.Fatal(err)
				}
				spans = append(spans, ActorSpans(srv, recs, "mha", actors)...)
			}
			var got []string
			for _, v := range CheckOneActor(spans) {
				got = append(got, v.A.Actor+"/"+v.B.Actor)
				if !strings.Contains(v.Detail, v.A.Name()+" changed") {
					t.Errorf("detail does not name the actor: %s", v.Detail)
				}
			}
			if !reflect.DeepEqual(got, tc.violations) {
				t.Fatalf("violations %v, want %v (spans %+v)", got, tc.violations, spans)
			}
		})
	}
}

// tagged is the first statement of a fenced connection of run tag.
func tagged(tag string) string {
	return "SELECT /* mharaft run " + tag + " */ CONNECTION_ID(), IS_USED_LOCK('mharaft.app1.0')"
}

func TestRunTag(t *testing.T) {
	for arg, want := range map[string]string{
		tagged("0123abcd"):         "0123abcd",
		"SELECT CONNECTION_ID()":   "",
		"SELECT /* mharaft run 5f": "",
	} {
		if got := RunTag(arg); got != want {
			t.Errorf("RunTag(%q) = %q, want %q", arg, got, want)
		}
	}
}

func TestDuplicates(t *testing.T) {
	if d := Duplicates([]int64{5, 1, 2, 5, 3, 1, 5}); !reflect.DeepEqual(d, []int64{1, 5}) {
		t.Fatalf("Duplicates = %v, want [1 5]", d)
	}
	if d := Duplicates([]int64{1, 2, 3}); d != nil {
		t.Fatalf("Duplicates = %v, want none", d)
	}
}

// TestReportShowsSafetyChecks: the new checkers' findings reach the
// totals, report.txt and the timeline.
func TestReportShowsSafetyChecks(t *testing.T) {
	v := OneActorViolation{A: ActorSpan{Actor: "m1", Server: "server2"}, B: ActorSpan{Actor: "m2", Server: "server2"}, Detail: "m1 changed server2 while m2 did"}
	rep := &Report{Seed: 3, Started: t0, RoundList: []*Round{
		{Index: 1, Nemesis: "leader-pause-mid-apply", MasterSSHReachable: true, Converged: true, Start: at(0), End: at(4000),
			OneActor: []OneActorViolation{v}, Duplicates: []int64{7}, TailRows: 100, TailRowsFound: 90, TailDuplicateRows: 40,
			Events: []Event{{At: at(1000), Kind: "actor", Detail: "m1 first change on server2: STOP SLAVE"}}},
		{Index: 2, Nemesis: "refused-failover", MasterSSHReachable: true, Converged: true, Passed: false, Start: at(0), End: at(4000),
			NemesisChecks: []string{"the round added 120 history entries"}},
	}}
	rep.finish()
	if rep.OneActorViolations != 1 || rep.DuplicatedRows != 41 || rep.LostTailRows != 10 || rep.NemesisCheckFailures != 1 || rep.Passed {
		t.Fatalf("totals: one actor %d, duplicated %d, lost tail %d, nemesis checks %d, passed %v",
			rep.OneActorViolations, rep.DuplicatedRows, rep.LostTailRows, rep.NemesisCheckFailures, rep.Passed)
	}
	var txt strings.Builder
	rep.WriteText(&txt)
	for _, want := range []string{"one actor violations: 1", "one actor: m1 changed server2 while m2 did", "rows applied twice: 1 workload values",
		"tail: 100 rows written, 90 distinct on the final master, 40 extra copies", "nemesis check: the round added 120 history entries"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("report.txt lacks %q:\n%s", want, txt.String())
		}
	}
	var h strings.Builder
	rep.WriteHTML(&h)
	if !strings.Contains(h.String(), "m1 first change on server2") {
		t.Error("the timeline lacks the actor event")
	}
}
