package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
)

// TestStatusStaleRows (issue 15 item 1): the exact table an operator sees
// when the rows are stale: right after a failover (the leader's last
// discovery started before it: roles are the managers' belief, every row
// says why it is stale) and without a leader (rows too old). Ages and the
// LAST CONTACT column come from the manager; the leader's own is empty.
func TestStatusStaleRows(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	age := func(s float64) *float64 { return &s }
	tests := []struct {
		name   string
		change func(st *api.Status)
		want   string
	}{
		{
			name: "0.4 s after a failover",
			change: func(st *api.Status) {
				a := &st.Apps[0]
				a.Master, a.Verdict = "127.0.0.1:3307", ""
				why := "discovered 0.4s ago, before the failover of epoch 3 made server2 the master; not rediscovered since (the leader does it as soon as it can)"
				a.Servers = []api.ServerStatus{
					{Name: "server1", Addr: "127.0.0.1:3306", Role: api.RoleDead, Health: api.HealthStale, HealthDetail: why, Stale: true, ObservedAt: &at, AgeSeconds: age(0.4)},
					{Name: "server2", Addr: "127.0.0.1:3307", Role: api.RoleMaster, Reachable: true, ReadOnly: true, Health: api.HealthStale, HealthDetail: why, Stale: true, ObservedAt: &at, AgeSeconds: age(0.4)},
					{Name: "server3", Addr: "127.0.0.1:3308", Role: api.RoleReplica, ReplicatingFrom: "127.0.0.1:3307", Reachable: true, ReadOnly: true, Health: api.HealthStale, HealthDetail: why, Stale: true, ObservedAt: &at, AgeSeconds: age(0.4)},
				}
			},
			want: `Cluster: answered by node1, leader node1, term 7

MANAGER  ROLE      VOTER  ALIVE  DATACENTER  RAFT ADDR       API ADDR        LAST CONTACT
node1    leader    yes    yes    dc1         127.0.0.1:7001  127.0.0.1:8001  -
node2    follower  yes    yes    dc1         127.0.0.1:7002  127.0.0.1:8002  12ms
node3    follower  yes    yes    dc2         127.0.0.1:7003  127.0.0.1:8003  15ms

Application app1: master 127.0.0.1:3307, verdict -, automatic failover on, last failover 2026-11-25 10:02:00 (acknowledged)
server2(127.0.0.1:3307) (current master), STALE
 +--server3(127.0.0.1:3308) replica, STALE
server1(127.0.0.1:3306) dead, STALE

SERVER   ADDR            ROLE     HEALTH  AGE   READ_ONLY  IO  SQL  LAG  BINLOG  READ  EXEC  GTID
server1  127.0.0.1:3306  dead     stale   0.4s  no         -   -    -    -       -     -     -
server2  127.0.0.1:3307  master   stale   0.4s  yes        -   -    -    -       -     -     -
server3  127.0.0.1:3308  replica  stale   0.4s  yes        -   -    -    -       -     -     -

server1: stale: discovered 0.4s ago, before the failover of epoch 3 made server2 the master; not rediscovered since (the leader does it as soon as it can)
server2: stale: discovered 0.4s ago, before the failover of epoch 3 made server2 the master; not rediscovered since (the leader does it as soon as it can)
server3: stale: discovered 0.4s ago, before the failover of epoch 3 made server2 the master; not rediscovered since (the leader does it as soon as it can)
`,
		},
		{
			name: "no leader for 25 s",
			change: func(st *api.Status) {
				st.Leader = ""
				st.Managers[0].Role, st.Managers[0].LastContact = "candidate", "25.312s"
				st.Managers[1].Alive, st.Managers[2].Alive = false, false
				a := &st.Apps[0]
				for i := range a.Servers {
					s := &a.Servers[i]
					s.Stale, s.Health, s.ObservedAt, s.AgeSeconds = true, api.HealthStale, &at, age(25.4)
					s.HealthDetail = "last discovered 25s ago (ok then); the leader rediscovers every 5s: is there an established leader?"
				}
			},
			want: `Cluster: answered by node1, leader NONE (no raft leader: actions are refused), term 7

MANAGER  ROLE       VOTER  ALIVE  DATACENTER  RAFT ADDR       API ADDR        LAST CONTACT
node1    candidate  yes    yes    dc1         127.0.0.1:7001  127.0.0.1:8001  25.312s
node2    follower   yes    no     dc1         127.0.0.1:7002  127.0.0.1:8002  12ms
node3    follower   yes    no     dc2         127.0.0.1:7003  127.0.0.1:8003  15ms

Application app1: master server1, verdict Healthy, automatic failover on, last failover 2026-11-25 10:02:00 (acknowledged)
server1(127.0.0.1:3306) (current master), STALE
 +--server2(127.0.0.1:3307) replica, io Yes, sql Yes, lag 0s, STALE
 +--server3(127.0.0.1:3308) replica, io Yes, sql Yes, lag 3s, STALE

SERVER   ADDR            ROLE     HEALTH  AGE  READ_ONLY  IO   SQL  LAG  BINLOG                 READ                   EXEC                   GTID
server1  127.0.0.1:3306  master   stale   25s  no         -    -    -    mysql-bin.000001:1234  -                      -                      0-1-10
server2  127.0.0.1:3307  replica  stale   25s  yes        Yes  Yes  0s   -                      mysql-bin.000001:1234  mysql-bin.000001:1234  0-1-10
server3  127.0.0.1:3308  replica  stale   25s  yes        Yes  Yes  3s   -                      mysql-bin.000001:1234  mysql-bin.000001:1000  0-1-9

server1: stale: last discovered 25s ago (ok then); the leader rediscovers every 5s: is there an established leader?
server2: stale: last discovered 25s ago (ok then); the leader rediscovers every 5s: is there an established leader?
server3: stale: last discovered 25s ago (ok then); the leader rediscovers every 5s: is there an established leader?
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := apitest.NewFakeBackend()
			tc.change(&fake.State)
			fc := startFakeCluster(t, fake)
			cmd := exec.Command(clusterBin, "--addr", fc.url, "--token-file", fc.tokenFile, "status")
			cmd.Env = append(os.Environ(), "MHACTL_ADDR=", "MHACTL_TOKEN_FILE=", "MHACTL_CACERT=", "TZ=UTC")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("mhactl status: %v\n%s", err, out)
			}
			t.Logf("mhactl status:\n%s", out)
			if got := trimLines(string(out)); got != trimLines(tc.want) {
				t.Fatalf("mhactl status:\n%s\nwant:\n%s", got, trimLines(tc.want))
			}
		})
	}
}

// trimLines drops the trailing blanks of every line (tabwriter pads).
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}
