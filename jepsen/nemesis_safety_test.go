package jepsen

import "testing"

// TestAppliesEvents: the pause of leader-pause-mid-apply is triggered by
// the tail's apply (a batch with a BINLOG statement, or binlog.Apply's own
// replication connection), not by the catch-up START SLAVE that precedes
// it in a GTID round.
func TestAppliesEvents(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want bool
	}{
		{"SET @mharaft_apply_guard=(SELECT 1 UNION ALL SELECT 1 FROM DUAL WHERE NOT (@mharaft_apply_batch <=> 0))\n;\nBINLOG 'AAAA'\n;\nSET @mharaft_apply_batch=1", true},
		{"BINLOG @mharaft_apply_rows_0, @mharaft_apply_empty", true},
		{"  binlog 'AAAA'", true},
		{"START SLAVE 'mharaft_apply'", true},
		{"START SLAVE", false},
		{"START SLAVE UNTIL master_gtid_pos='0-1-5'", false},
		{"CHANGE MASTER 'mharaft_apply' TO MASTER_HOST='10.0.0.1'", false},
		{"SELECT 'BINLOG x'", false},
		{"SET @mharaft_apply_rows_0='BINLOG'", false},
		{"", false},
	} {
		if got := appliesEvents(tc.arg); got != tc.want {
			t.Errorf("appliesEvents(%q) = %v, want %v", tc.arg, got, tc.want)
		}
	}
}
