package failover

import (
	"path/filepath"
	"testing"
	"time"
)

// TestReportNames (issue 15 item 6): a report with an epoch is named by
// it, zero-padded; without one (mhactl --local) it is named by its start
// second and never overwrites a report of the same second.
func TestReportNames(t *testing.T) {
	dir := t.TempDir()
	started := time.Date(2026, 12, 7, 13, 5, 1, 0, time.UTC)
	tests := []struct {
		rep  Report
		want string
	}{
		{Report{Kind: "failover", App: "app1", Epoch: 7, Started: started}, "failover_report_app1_epoch0000000007.json"},
		{Report{Kind: "failover", App: "app1", Epoch: 7, Started: started}, "failover_report_app1_epoch0000000007.json"}, // the same run again
		{Report{Kind: "switch", App: "app1", Epoch: 12, Started: started}, "switch_report_app1_epoch0000000012.json"},
		{Report{Kind: "failover", App: "app1", Started: started}, "failover_report_app1_20261207130501.json"},
		{Report{Kind: "failover", App: "app1", Started: started}, "failover_report_app1_20261207130501_2.json"},
		{Report{Kind: "failover", App: "app1", Plan: &Plan{ID: "20261207130501"}}, "failover_report_app1_20261207130501_3.json"},
	}
	for _, tc := range tests {
		path, err := tc.rep.WriteJSON(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := filepath.Base(path); got != tc.want || tc.rep.Path != path {
			t.Errorf("epoch %d started %s: wrote %s (Path %q), want %s", tc.rep.Epoch, tc.rep.Started.Format(time.RFC3339), got, tc.rep.Path, tc.want)
		}
	}
}
