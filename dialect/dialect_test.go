package dialect

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		raw, comment string
		want         Version
	}{
		{"10.11.19-MariaDB-0+deb12u1", "Debian 12", Version{10, 11, 19, MariaDB, "10.11.19-MariaDB-0+deb12u1"}},
		{"5.5.5-10.6.16-MariaDB", "", Version{10, 6, 16, MariaDB, "5.5.5-10.6.16-MariaDB"}},
		{"10.4.32-log", "MariaDB Server", Version{10, 4, 32, MariaDB, "10.4.32-log"}},
		{"8.0.36", "MySQL Community Server - GPL", Version{8, 0, 36, MySQL, "8.0.36"}},
		{"8.4.2-log", "", Version{8, 4, 2, MySQL, "8.4.2-log"}},
		{"5.7.44-log", "", Version{5, 7, 44, MySQL, "5.7.44-log"}},
		{"8.0", "", Version{8, 0, 0, MySQL, "8.0"}},
	}
	for _, tt := range tests {
		got, err := ParseVersion(tt.raw, tt.comment)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tt.raw, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseVersion(%q) = %+v, want %+v", tt.raw, got, tt.want)
		}
	}
	for _, bad := range []string{"", "abc", "8", "8.x.1"} {
		if _, err := ParseVersion(bad, ""); err == nil {
			t.Errorf("ParseVersion(%q) succeeded, want an error", bad)
		}
	}
}

func TestVersionLess(t *testing.T) {
	tests := []struct {
		a, b string
		less bool
	}{
		{"5.7.44", "8.0.0", true},
		{"8.0.22", "8.0.23", true},
		{"8.0.23", "8.0.22", false},
		{"8.0.36", "8.4.0", true},
		{"8.4.2", "8.4.2", false},
		{"10.11.6-MariaDB", "10.6.16-MariaDB", false},
	}
	for _, tt := range tests {
		if got := MustParseVersion(tt.a).Less(MustParseVersion(tt.b)); got != tt.less {
			t.Errorf("%s.Less(%s) = %v, want %v", tt.a, tt.b, got, tt.less)
		}
	}
}

// The statements each server version gets.
func TestDialectStatements(t *testing.T) {
	type stmts struct {
		showReplica, stop, startIO, reset, showMaster, posWait, gtidWait string
		readOnlyOn, readOnlyOff                                          []string
		semiMaster, semiReplica                                          string
	}
	tests := []struct {
		version string
		want    stmts
	}{
		{"10.11.6-MariaDB", stmts{"SHOW SLAVE STATUS", "STOP SLAVE", "START SLAVE IO_THREAD", "RESET SLAVE ALL", "SHOW MASTER STATUS",
			"SELECT MASTER_POS_WAIT('mysql-bin.000008', 862, 30)", "SELECT MASTER_GTID_WAIT('0-101-3', 30)",
			[]string{"SET GLOBAL read_only=1"}, []string{"SET GLOBAL read_only=0"},
			"rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled"}},
		{"5.7.44-log", stmts{"SHOW SLAVE STATUS", "STOP SLAVE", "START SLAVE IO_THREAD", "RESET SLAVE ALL", "SHOW MASTER STATUS",
			"SELECT MASTER_POS_WAIT('mysql-bin.000008', 862, 30)", "SELECT WAIT_FOR_EXECUTED_GTID_SET('0-101-3', 30)",
			[]string{"SET GLOBAL read_only=1", "SET GLOBAL super_read_only=1"}, []string{"SET GLOBAL super_read_only=0", "SET GLOBAL read_only=0"},
			"rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled"}},
		{"8.0.21", stmts{"SHOW SLAVE STATUS", "STOP SLAVE", "START SLAVE IO_THREAD", "RESET SLAVE ALL", "SHOW MASTER STATUS",
			"SELECT MASTER_POS_WAIT('mysql-bin.000008', 862, 30)", "SELECT WAIT_FOR_EXECUTED_GTID_SET('0-101-3', 30)",
			[]string{"SET GLOBAL read_only=1", "SET GLOBAL super_read_only=1"}, []string{"SET GLOBAL super_read_only=0", "SET GLOBAL read_only=0"},
			"rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled"}},
		{"8.0.22", stmts{"SHOW REPLICA STATUS", "STOP REPLICA", "START REPLICA IO_THREAD", "RESET REPLICA ALL", "SHOW MASTER STATUS",
			"SELECT MASTER_POS_WAIT('mysql-bin.000008', 862, 30)", "SELECT WAIT_FOR_EXECUTED_GTID_SET('0-101-3', 30)",
			[]string{"SET GLOBAL read_only=1", "SET GLOBAL super_read_only=1"}, []string{"SET GLOBAL super_read_only=0", "SET GLOBAL read_only=0"},
			"rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled"}},
		{"8.0.36", stmts{"SHOW REPLICA STATUS", "STOP REPLICA", "START REPLICA IO_THREAD", "RESET REPLICA ALL", "SHOW MASTER STATUS",
			"SELECT SOURCE_POS_WAIT('mysql-bin.000008', 862, 30)", "SELECT WAIT_FOR_EXECUTED_GTID_SET('0-101-3', 30)",
			[]string{"SET GLOBAL read_only=1", "SET GLOBAL super_read_only=1"}, []string{"SET GLOBAL super_read_only=0", "SET GLOBAL read_only=0"},
			"rpl_semi_sync_source_enabled", "rpl_semi_sync_replica_enabled"}},
		{"8.4.2-log", stmts{"SHOW REPLICA STATUS", "STOP REPLICA", "START REPLICA IO_THREAD", "RESET REPLICA ALL", "SHOW BINARY LOG STATUS",
			"SELECT SOURCE_POS_WAIT('mysql-bin.000008', 862, 30)", "SELECT WAIT_FOR_EXECUTED_GTID_SET('0-101-3', 30)",
			[]string{"SET GLOBAL read_only=1", "SET GLOBAL super_read_only=1"}, []string{"SET GLOBAL super_read_only=0", "SET GLOBAL read_only=0"},
			"rpl_semi_sync_source_enabled", "rpl_semi_sync_replica_enabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			d := For(MustParseVersion(tt.version))
			got := stmts{d.ShowReplicaStatus(), d.StopReplica(), d.StartIOThread(), d.ResetReplicaAll(), d.ShowMasterStatus(),
				d.MasterPosWait("mysql-bin.000008", 862, 29500*time.Millisecond), d.GTIDWait("0-101-3", 30*time.Second),
				d.SetReadOnly(true), d.SetReadOnly(false), d.SemiSyncMasterEnabledVar(), d.SemiSyncReplicaEnabledVar()}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestChangeMaster(t *testing.T) {
	base := ChangeMasterOpts{Host: "10.0.0.2", Port: 3306, User: "repl", Password: "s3cr'et",
		HeartbeatPeriod: 500 * time.Millisecond, ConnectRetry: time.Second}
	filePos := base
	filePos.File, filePos.Pos = "mysql-bin.000008", 862
	gtid := base
	gtid.Mode = GTIDSlavePos
	current := base
	current.Mode = GTIDCurrentPos
	tests := []struct {
		version string
		opts    ChangeMasterOpts
		want    string
	}{
		{"10.11.6-MariaDB", filePos, "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='s3cr''et', MASTER_LOG_FILE='mysql-bin.000008', MASTER_LOG_POS=862, MASTER_USE_GTID=no, MASTER_HEARTBEAT_PERIOD=0.5, MASTER_CONNECT_RETRY=1"},
		{"10.11.6-MariaDB", gtid, "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='s3cr''et', MASTER_USE_GTID=slave_pos, MASTER_HEARTBEAT_PERIOD=0.5, MASTER_CONNECT_RETRY=1"},
		{"10.11.6-MariaDB", current, "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='s3cr''et', MASTER_USE_GTID=current_pos, MASTER_HEARTBEAT_PERIOD=0.5, MASTER_CONNECT_RETRY=1"},
		{"5.7.44", filePos, "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='s3cr''et', MASTER_LOG_FILE='mysql-bin.000008', MASTER_LOG_POS=862, MASTER_AUTO_POSITION=0, MASTER_HEARTBEAT_PERIOD=0.5, MASTER_CONNECT_RETRY=1"},
		{"8.0.22", gtid, "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='s3cr''et', MASTER_AUTO_POSITION=1, MASTER_HEARTBEAT_PERIOD=0.5, MASTER_CONNECT_RETRY=1"},
		{"8.0.23", gtid, "CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.2', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='s3cr''et', SOURCE_AUTO_POSITION=1, SOURCE_HEARTBEAT_PERIOD=0.5, SOURCE_CONNECT_RETRY=1"},
		{"8.4.2", filePos, "CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.2', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='s3cr''et', SOURCE_LOG_FILE='mysql-bin.000008', SOURCE_LOG_POS=862, SOURCE_AUTO_POSITION=0, SOURCE_HEARTBEAT_PERIOD=0.5, SOURCE_CONNECT_RETRY=1"},
		{"8.4.2", ChangeMasterOpts{Host: "db1", Mode: GTIDSlavePos, GetSourcePublicKey: true}, "CHANGE REPLICATION SOURCE TO SOURCE_HOST='db1', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1"},
	}
	for _, tt := range tests {
		got := For(MustParseVersion(tt.version)).ChangeMaster(tt.opts)
		if got != tt.want {
			t.Errorf("%s ChangeMaster:\n got  %s\n want %s", tt.version, got, tt.want)
		}
		red := RedactPassword(got)
		if tt.opts.Password != "" && (strings.Contains(red, "s3cr") || !strings.Contains(red, "_PASSWORD='***'")) {
			t.Errorf("%s RedactPassword left the password: %s", tt.version, red)
		}
	}
}

func TestPosCompare(t *testing.T) {
	tests := []struct {
		a, b Pos
		want int
	}{
		{Pos{"mysql-bin.000008", 609}, Pos{"mysql-bin.000008", 862}, -1},
		{Pos{"mysql-bin.000008", 862}, Pos{"mysql-bin.000008", 862}, 0},
		{Pos{"mysql-bin.000009", 4}, Pos{"mysql-bin.000008", 862}, 1},
		{Pos{"mysql-bin.000010", 4}, Pos{"mysql-bin.000009", 9999}, 1},
		{Pos{"mysql-bin.999999", 4}, Pos{"mysql-bin.1000000", 4}, -1},
		{Pos{"a", 5}, Pos{"b", 1}, -1},
	}
	for _, tt := range tests {
		if got := tt.a.Compare(tt.b); got != tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := tt.b.Compare(tt.a); got != -tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
	p, err := ParsePos("mysql-bin.000008:862")
	if err != nil || p != (Pos{"mysql-bin.000008", 862}) {
		t.Errorf("ParsePos = %v, %v", p, err)
	}
}

// readRecorded reads a SHOW ... STATUS\G fixture into column -> value.
// Lines starting with # are comments; a value ending in "," continues on the
// next line (MySQL breaks long GTID sets that way).
func readRecorded(t *testing.T, name string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := map[string]string{}
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "***") {
			continue
		}
		if last != "" && strings.HasSuffix(row[last], ",") {
			row[last] += "\n" + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("%s: bad line %q", name, line)
		}
		last = strings.TrimSpace(k)
		row[last] = strings.TrimSpace(v)
	}
	return row
}

func i64(n int64) *int64 { return &n }

// Recorded fixtures of MySQL 5.7, 8.0 and 8.4 (see testdata/*.txt).
func TestParseReplicaStatusRecorded(t *testing.T) {
	tests := []struct {
		file string
		want ReplicaStatus
	}{
		{"mysql-8.0.36-show-replica-status.txt", ReplicaStatus{
			MasterHost: "192.168.0.101", MasterPort: 3306, MasterUser: "repl", MasterServerID: 101,
			MasterUUID: "3e11fa47-71ca-11e1-9e33-c80aa9429562", MasterLogFile: "mysql-bin.000008", ReadMasterLogPos: 862,
			RelayLogFile: "mha03-relay-bin.000002", RelayLogPos: 1079, RelayMasterLogFile: "mysql-bin.000008", ExecMasterLogPos: 862,
			IORunning: "No", SQLRunning: true, SecondsBehindMaster: nil,
			RetrievedGTIDSet: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-3",
			ExecutedGTIDSet:  "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-3,6c27ed6d-7ee1-11e3-be39-6c626d957cff:1-7",
			AutoPosition:     true, Filters: ReplFilters{WildIgnoreTable: "mysql.%"},
			LastIOErrno: 2003, LastIOError: "error reconnecting to master 'repl@192.168.0.101:3306' - retry-time: 60 retries: 1 message: Can't connect to MySQL server on '192.168.0.101:3306' (111)",
			SQLState: "Replica has read all relay log; waiting for more updates",
		}},
		{"mysql-8.4.2-show-replica-status.txt", ReplicaStatus{
			MasterHost: "db1.example.com", MasterPort: 3307, MasterUser: "repl", MasterServerID: 2,
			MasterUUID: "8a94f357-aab4-11df-86ab-c80aa9429562", MasterLogFile: "binlog.000012", ReadMasterLogPos: 4415,
			RelayLogFile: "relay-bin.000004", RelayLogPos: 2001, RelayMasterLogFile: "binlog.000011", ExecMasterLogPos: 99871,
			IORunning: "Yes", SQLRunning: true, SecondsBehindMaster: i64(3),
			Filters:  ReplFilters{DoDB: "app,billing"},
			SQLState: "Waiting for dependent transaction to commit",
		}},
		{"mysql-5.7.44-show-slave-status.txt", ReplicaStatus{
			MasterHost: "10.0.0.5", MasterPort: 3306, MasterUser: "repl", MasterServerID: 1,
			MasterUUID: "0c9a1d4e-3b2f-11ee-a5b1-0242ac110002", MasterLogFile: "mysql-bin.000120", ReadMasterLogPos: 1544,
			RelayLogFile: "relay-log.000350", RelayLogPos: 320, RelayMasterLogFile: "mysql-bin.000119", ExecMasterLogPos: 1002,
			IORunning: "Yes", SQLRunning: false,
			Filters:      ReplFilters{IgnoreDB: "test", IgnoreTable: "app.audit"},
			LastSQLErrno: 1062,
			LastSQLError: "Could not execute Write_rows event on table app.t1; Duplicate entry '3' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log mysql-bin.000119, end_log_pos 1209",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseReplicaStatus(readRecorded(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseReplicaStatusErrors(t *testing.T) {
	if _, err := ParseReplicaStatus(map[string]string{"Master_Host": "h", "Read_Master_Log_Pos": "12x"}); err == nil ||
		!strings.Contains(err.Error(), "Read_Master_Log_Pos") {
		t.Errorf("bad position: err = %v, want one naming Read_Master_Log_Pos", err)
	}
	if _, err := ParseReplicaStatus(map[string]string{"Read_Master_Log_Pos": "12"}); err == nil {
		t.Error("no host: want an error")
	}
}

func TestReplFiltersEqual(t *testing.T) {
	tests := []struct {
		a, b ReplFilters
		eq   bool
	}{
		{ReplFilters{}, ReplFilters{}, true},
		{ReplFilters{DoDB: "a,b"}, ReplFilters{DoDB: "b,a"}, true},
		{ReplFilters{DoDB: "a"}, ReplFilters{}, false},
		{ReplFilters{DoDB: "a"}, ReplFilters{IgnoreDB: "a"}, false},
	}
	for _, tt := range tests {
		if got := tt.a.Equal(tt.b); got != tt.eq {
			t.Errorf("%v.Equal(%v) = %v, want %v", tt.a, tt.b, got, tt.eq)
		}
	}
}
