package detector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/config"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const window = 3 * time.Second

func managers(ids ...string) []Manager {
	var ms []Manager
	for _, id := range ids {
		ms = append(ms, Manager{ID: id})
	}
	return ms
}

// obs is an observation of server1 by manager m, made age before t0.
func obs(m string, reachable bool, kind string, age time.Duration) Observation {
	return Observation{App: "app1", Manager: m, Server: "server1", Reachable: reachable, Kind: kind,
		Since: t0.Add(-age - time.Second), At: t0.Add(-age)}
}

func down(m string) Observation { return obs(m, false, KindRefused, 100*time.Millisecond) }
func up(m string) Observation   { return obs(m, true, KindOK, 100*time.Millisecond) }

// Replica views sampled just before t0.
func ioError(name string, errno int) ReplicaView {
	return ReplicaView{Server: name, Reachable: true, SampledAt: t0.Add(-50 * time.Millisecond),
		ReplicaOfMaster: true, IORunning: "Connecting", LastIOErrno: errno, Heartbeats: 3,
		HeartbeatPeriod: 500 * time.Millisecond, TrackedSince: t0.Add(-time.Minute), LastProgress: t0.Add(-time.Second)}
}

func streaming(name string) ReplicaView {
	return ReplicaView{Server: name, Reachable: true, SampledAt: t0.Add(-50 * time.Millisecond),
		ReplicaOfMaster: true, IORunning: "Yes", Heartbeats: 40, HeartbeatPeriod: 500 * time.Millisecond,
		TrackedSince: t0.Add(-time.Minute), LastProgress: t0.Add(-400 * time.Millisecond)}
}

// silent is connected but has not received a heartbeat or event for quiet.
func silent(name string, quiet time.Duration) ReplicaView {
	v := streaming(name)
	v.LastProgress = t0.Add(-quiet)
	return v
}

func unreachableReplica(name string) ReplicaView {
	return ReplicaView{Server: name, Reachable: false, Error: "connection refused", SampledAt: t0.Add(-50 * time.Millisecond), Heartbeats: -1}
}

func TestEvaluate(t *testing.T) {
	yes, no := true, false
	three := managers("m1", "m2", "m3")
	dead := []ReplicaView{ioError("server2", 2003), ioError("server3", 2013)}
	tests := []struct {
		name      string
		in        Input
		want      VerdictKind
		needCheck bool
	}{
		{"all managers reach it", Input{Managers: three, Observations: []Observation{up("m1"), up("m2"), up("m3")}, Replicas: dead},
			Healthy, false},
		{"no observation at all", Input{Managers: three}, NoFreshObservation, false},
		{"only stale observations", Input{Managers: three, Observations: []Observation{
			obs("m1", false, KindRefused, 10*time.Second), obs("m2", false, KindRefused, 10*time.Second)}, Replicas: dead},
			NoFreshObservation, false},
		{"majority cannot reach, replicas confirm", Input{Managers: three, Observations: []Observation{down("m1"), down("m2"), down("m3")}, Replicas: dead},
			DeadMaster, false},
		{"bare majority (2 of 3) cannot reach, third stale", Input{Managers: three, Observations: []Observation{
			down("m1"), down("m2"), obs("m3", true, KindOK, 10*time.Second)}, Replicas: dead},
			DeadMaster, false},
		{"minority (1 of 3) cannot reach", Input{Managers: three, Observations: []Observation{down("m1"), up("m2"), up("m3")}, Replicas: dead},
			UnreachableMaster, false},
		{"minority: 1 of 3 cannot reach, the others stale", Input{Managers: three, Observations: []Observation{
			down("m1"), obs("m2", false, KindRefused, 10*time.Second), obs("m3", false, KindTimeout, 10*time.Second)}, Replicas: dead},
			UnreachableMaster, false},
		{"half is not a majority (2 of 4)", Input{Managers: managers("m1", "m2", "m3", "m4"), Observations: []Observation{down("m1"), down("m2")}, Replicas: dead},
			UnreachableMaster, false},
		{"majority cannot reach but one manager reaches it: veto", Input{Managers: managers("m1", "m2", "m3", "m4", "m5"),
			Observations: []Observation{down("m1"), down("m2"), down("m3"), up("m4")}, Replicas: dead},
			UnreachableMaster, false},
		{"majority cannot reach but a replica still receives heartbeats", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")}, Replicas: []ReplicaView{ioError("server2", 2003), streaming("server3")}},
			UnreachableMaster, false},
		{"replica connected, silent shorter than the window", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")}, Replicas: []ReplicaView{silent("server2", 2*time.Second), silent("server3", 2*time.Second)}},
			UnreachableMaster, false},
		{"replica connected, silent longer than the window (paused master)", Input{Managers: three,
			Observations: []Observation{obs("m1", false, KindTimeout, 0), obs("m2", false, KindTimeout, 0), obs("m3", false, KindTimeout, 0)},
			Replicas:     []ReplicaView{silent("server2", 4*time.Second), silent("server3", 4*time.Second)}},
			DeadMaster, false},
		{"silent replica without heartbeat data does not confirm", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")},
			Replicas: []ReplicaView{func() ReplicaView {
				v := silent("server2", time.Minute)
				v.Heartbeats, v.HeartbeatPeriod = -1, 0
				return v
			}()}},
			UnreachableMaster, false},
		{"silent replica tracked for less than the window does not confirm", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")},
			Replicas: []ReplicaView{func() ReplicaView {
				v := silent("server2", time.Second)
				v.TrackedSince = t0.Add(-time.Second)
				return v
			}()}},
			UnreachableMaster, false},
		{"replica retrying and the master answers it (access denied)", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")}, Replicas: []ReplicaView{ioError("server2", 1045)}},
			UnreachableMaster, false},
		{"replica IO thread stopped by an operator confirms (no events)", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")},
			Replicas:     []ReplicaView{func() ReplicaView { v := ioError("server2", 0); v.IORunning = "No"; return v }()}},
			DeadMaster, false},
		{"some replicas unreachable, the rest confirm", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")}, Replicas: []ReplicaView{ioError("server2", 2003), unreachableReplica("server3")}},
			DeadMasterAndSomeReplicas, false},
		{"no replica reachable", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")}, Replicas: []ReplicaView{unreachableReplica("server2"), unreachableReplica("server3")}},
			DeadMasterWithoutReplicas, false},
		{"stale replica sample is unknown", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")},
			Replicas:     []ReplicaView{func() ReplicaView { v := ioError("server2", 2003); v.SampledAt = t0.Add(-time.Minute); return v }()}},
			DeadMasterWithoutReplicas, false},
		{"replica of another master is ignored", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")},
			Replicas:     []ReplicaView{ioError("server2", 2003), func() ReplicaView { v := streaming("server3"); v.ReplicaOfMaster = false; return v }()}},
			DeadMaster, false},
		{"alive-but-refusing counts as reaching", Input{Managers: three, Observations: []Observation{
			obs("m1", true, KindAliveRefusing, 0), obs("m2", true, KindAuthError, 0), obs("m3", true, KindAliveRefusing, 0)}, Replicas: dead},
			Healthy, false},
		{"two cannot reach, one gets too-many-connections: veto", Input{Managers: three, Observations: []Observation{
			down("m1"), down("m2"), obs("m3", true, KindAliveRefusing, 0)}, Replicas: dead},
			UnreachableMaster, false},
		{"observations of other servers are ignored", Input{Managers: three, Observations: []Observation{
			down("m1"), func() Observation { o := down("m2"); o.Server = "server2"; return o }()}, Replicas: dead},
			UnreachableMaster, false},
		{"the latest observation per manager wins", Input{Managers: three, Observations: []Observation{
			down("m1"), down("m2"), down("m3"), obs("m3", true, KindOK, 2*time.Second)}, Replicas: dead},
			DeadMaster, false},
		{"two datacenters: non-reachers all in one", Input{
			Managers:     []Manager{{"m1", "dc1"}, {"m2", "dc1"}, {"m3", "dc2"}},
			Observations: []Observation{down("m1"), down("m2")}, Replicas: dead},
			UnreachableMaster, false},
		{"two datacenters: non-reachers span both", Input{
			Managers:     []Manager{{"m1", "dc1"}, {"m2", "dc1"}, {"m3", "dc2"}},
			Observations: []Observation{down("m1"), down("m3")}, Replicas: dead},
			DeadMaster, false},
		{"one datacenter named for all: rule does not apply", Input{
			Managers:     []Manager{{"m1", "dc1"}, {"m2", "dc1"}, {"m3", "dc1"}},
			Observations: []Observation{down("m1"), down("m2")}, Replicas: dead},
			DeadMaster, false},
		{"secondary check configured, not run yet", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")}, Replicas: dead, SecondaryCheckConfigured: true},
			UnreachableMaster, true},
		{"secondary check confirms (exit 0)", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")}, Replicas: dead, SecondaryCheckConfigured: true, SecondaryCheck: &yes},
			DeadMaster, false},
		{"secondary check does not confirm", Input{Managers: three,
			Observations: []Observation{down("m1"), down("m2"), down("m3")}, Replicas: dead, SecondaryCheckConfigured: true, SecondaryCheck: &no},
			UnreachableMaster, false},
		{"unknown managers' observations do not count", Input{Managers: three,
			Observations: []Observation{down("m1"), down("x1"), down("x2")}, Replicas: dead},
			UnreachableMaster, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Master, tc.in.Now, tc.in.Window = "server1", t0, window
			v := Evaluate(tc.in)
			if v.Kind != tc.want || v.NeedSecondaryCheck != tc.needCheck {
				t.Fatalf("got %s (need secondary check %v), want %s (%v); reasons: %q",
					v.Kind, v.NeedSecondaryCheck, tc.want, tc.needCheck, v.Reasons)
			}
			if v.Actionable() != (tc.want == DeadMaster || tc.want == DeadMasterAndSomeReplicas) {
				t.Fatalf("Actionable() = %v for %s", v.Actionable(), v.Kind)
			}
			if len(v.Reasons) == 0 && v.Kind != Healthy {
				t.Fatalf("verdict %s without reasons", v.Kind)
			}
		})
	}
}

// TestEvaluateLists checks the manager lists of a verdict.
func TestEvaluateLists(t *testing.T) {
	v := Evaluate(Input{Master: "server1", Managers: managers("m1", "m2", "m3"), Now: t0, Window: window,
		Observations: []Observation{down("m2"), up("m1")}})
	if fmt.Sprint(v.Reachers, v.NonReachers, v.Unknown) != "[m1] [m2] [m3]" {
		t.Fatalf("reachers/non-reachers/unknown = %v %v %v", v.Reachers, v.NonReachers, v.Unknown)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		kind      string
		reachable bool
	}{
		{"nil", nil, KindOK, true},
		{"too many connections", &mysql.MySQLError{Number: 1040, Message: "Too many connections"}, KindAliveRefusing, true},
		{"max_user_connections", fmt.Errorf("connect: %w", &mysql.MySQLError{Number: 1203}), KindAliveRefusing, true},
		{"host blocked", &mysql.MySQLError{Number: 1129}, KindAliveRefusing, true},
		{"user limit", &mysql.MySQLError{Number: 1226}, KindAliveRefusing, true},
		{"account locked (MariaDB)", &mysql.MySQLError{Number: 4151}, KindAuthError, true},
		{"host not privileged", &mysql.MySQLError{Number: 1130}, KindAuthError, true},
		{"access denied", &mysql.MySQLError{Number: 1045}, KindAuthError, true},
		{"db access denied", &mysql.MySQLError{Number: 1044}, KindAuthError, true},
		{"shutdown in progress", &mysql.MySQLError{Number: 1053}, KindShutdown, false},
		{"other server error", &mysql.MySQLError{Number: 1146}, KindServerError, true},
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, KindRefused, false},
		{"no route", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, KindUnreachable, false},
		{"context deadline", fmt.Errorf("ping: %w", context.DeadlineExceeded), KindTimeout, false},
		{"i/o timeout", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, KindTimeout, false},
		{"invalid connection", mysql.ErrInvalidConn, KindLost, false},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), KindLost, false},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, KindLost, false},
		{"anything else", errors.New("tls: bad certificate"), KindError, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, r := Classify(tc.err)
			if k != tc.kind || r != tc.reachable {
				t.Fatalf("Classify(%v) = %s, %v; want %s, %v", tc.err, k, r, tc.kind, tc.reachable)
			}
		})
	}
}

func TestParseReplicaStatus(t *testing.T) {
	master := &config.Server{Name: "server1", Hostname: "db1", IP: "10.0.0.1", Port: 3306}
	tests := []struct {
		name   string
		rows   []map[string]string
		check  func(v ReplicaView) bool
		expect string
	}{
		{"MariaDB SHOW ALL SLAVES STATUS (recorded on 10.11), two channels",
			[]map[string]string{
				{"Connection_name": "other", "Master_Host": "10.0.0.9", "Master_Port": "3306", "Slave_IO_Running": "Yes"},
				{"Connection_name": "", "Master_Host": "10.0.0.1", "Master_Port": "3306", "Slave_IO_Running": "Connecting",
					"Slave_SQL_Running": "Yes", "Last_IO_Errno": "2003", "Slave_heartbeat_period": "0.5", "Slave_received_heartbeats": "7"}},
			func(v ReplicaView) bool {
				return v.ReplicaOfMaster && v.IORunning == "Connecting" && v.LastIOErrno == 2003 &&
					v.HeartbeatPeriod == 500*time.Millisecond && v.Heartbeats == 7
			}, "channel of the master, heartbeat data"},
		{"MySQL 8 SHOW REPLICA STATUS column names (recorded form)",
			[]map[string]string{{"Source_Host": "db1", "Source_Port": "3306", "Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes",
				"Last_IO_Errno": "0", "Read_Source_Log_Pos": "157"}},
			func(v ReplicaView) bool { return v.ReplicaOfMaster && v.IORunning == "Yes" && v.Heartbeats == -1 },
			"matched by hostname, no heartbeat data"},
		{"replica of another server",
			[]map[string]string{{"Master_Host": "10.0.0.2", "Master_Port": "3306", "Slave_IO_Running": "Yes"}},
			func(v ReplicaView) bool { return !v.ReplicaOfMaster && v.MasterHost == "10.0.0.2" }, "not a replica of the master"},
		{"not a replica", nil, func(v ReplicaView) bool { return v.Reachable && !v.ReplicaOfMaster }, "reachable, no channel"},
		{"same host, other port",
			[]map[string]string{{"Master_Host": "10.0.0.1", "Master_Port": "3307", "Slave_IO_Running": "Yes"}},
			func(v ReplicaView) bool { return !v.ReplicaOfMaster }, "port must match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := parseReplicaStatus("server2", tc.rows, master)
			if !tc.check(s.view) {
				t.Fatalf("want %s, got %+v", tc.expect, s.view)
			}
		})
	}
}

// TestReplicaProgress checks that the tracker's progress key moves with
// heartbeats and the read position, and only then.
func TestReplicaProgress(t *testing.T) {
	master := &config.Server{Name: "server1", IP: "127.0.0.1", Hostname: "127.0.0.1", Port: 3306}
	row := func(hb, pos string) []map[string]string {
		return []map[string]string{{"Master_Host": "127.0.0.1", "Master_Port": "3306", "Slave_IO_Running": "Yes",
			"Slave_received_heartbeats": hb, "Master_Log_File": "mysql-bin.000001", "Read_Master_Log_Pos": pos}}
	}
	a := parseReplicaStatus("r", row("1", "100"), master).progress
	if b := parseReplicaStatus("r", row("1", "100"), master).progress; a != b {
		t.Fatalf("same status, different progress keys %q %q", a, b)
	}
	if b := parseReplicaStatus("r", row("2", "100"), master).progress; a == b {
		t.Fatal("a heartbeat did not change the progress key")
	}
	if b := parseReplicaStatus("r", row("1", "200"), master).progress; a == b {
		t.Fatal("an event did not change the progress key")
	}
}

// TestTrack: a replica's progress is dated across consecutive samples
// only; after a gap longer than TrackGap (a follower that sampled nothing
// while nobody asked) equal counters do not date the last progress to the
// old sample: tracking starts over, so the testified silence is never
// longer than what was watched.
func TestTrack(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	sample := func(at time.Time, progress string, since, last time.Time) replicaSample {
		return replicaSample{view: ReplicaView{SampledAt: at, TrackedSince: since, LastProgress: last}, progress: progress}
	}
	prev := sample(t0, "hb=7", t0.Add(-time.Minute), t0.Add(-time.Second))
	for _, tc := range []struct {
		name            string
		at              time.Time
		progress        string
		seen            bool
		wantSince, want time.Time
	}{
		{"first sample", t0.Add(time.Second), "hb=7", false, t0.Add(time.Second), t0.Add(time.Second)},
		{"no progress since the previous sample", t0.Add(2 * time.Second), "hb=7", true, t0.Add(-time.Minute), t0.Add(-time.Second)},
		{"progress since the previous sample", t0.Add(2 * time.Second), "hb=8", true, t0.Add(-time.Minute), t0.Add(2 * time.Second)},
		{"equal counters after a gap", t0.Add(TrackGap + time.Second), "hb=7", true, t0.Add(TrackGap + time.Second), t0.Add(TrackGap + time.Second)},
		{"other counters after a gap", t0.Add(time.Minute), "hb=0", true, t0.Add(time.Minute), t0.Add(time.Minute)},
	} {
		cur := sample(tc.at, tc.progress, time.Time{}, time.Time{})
		track(&cur, prev, tc.seen)
		if !cur.view.TrackedSince.Equal(tc.wantSince) || !cur.view.LastProgress.Equal(tc.want) {
			t.Errorf("%s: tracked since %s, last progress %s; want %s, %s", tc.name,
				cur.view.TrackedSince.Format(time.TimeOnly), cur.view.LastProgress.Format(time.TimeOnly),
				tc.wantSince.Format(time.TimeOnly), tc.want.Format(time.TimeOnly))
		}
	}
}
