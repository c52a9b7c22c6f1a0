package bench

import (
	"context"
	"io"
	"os"
	"testing"
	"time"
)

// TestScaleSuiteSmall runs the scale suite at a small size (4 real and up
// to 12 simulated applications, one single failover and three masters
// killed at once) and checks that every figure was measured, nothing was
// lost and no application failed over after the leader kill.
func TestScaleSuiteSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers and mhanode processes")
	}
	t.Setenv("MHABENCH_SCALE_SIZES", "8,16")
	t.Setenv("MHABENCH_SCALE_REAL", "4")
	t.Setenv("MHABENCH_SCALE_SINGLE", "1")
	t.Setenv("MHABENCH_SCALE_MEASURE", "5s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var log io.Writer = io.Discard
	if testing.Verbose() {
		log = os.Stderr
	}
	res, err := scaleSuite(ctx, t.TempDir(), true, log)
	if err != nil {
		t.Fatal(err)
	}
	out := res.Extra.(*scaleResult)
	if len(out.Steady) != 2 {
		t.Fatalf("%d sizes measured, want 2", len(out.Steady))
	}
	for _, st := range out.Steady {
		if st.LeaderCores <= 0 || st.FollowerCores <= 0 || st.LeaderRSSMB <= 0 || st.RaftEntries == 0 || st.OpenConns < int64(st.Apps) {
			t.Errorf("%d apps: not every figure measured: %+v", st.Apps, st)
		}
	}
	f := out.Failures
	if f == nil {
		t.Fatal("no failure scenarios")
	}
	if f.LeaderKillActingS <= 0 || f.FalseFailovers != 0 {
		t.Errorf("leader kill: acting after %.3f s, %d false failovers", f.LeaderKillActingS, f.FalseFailovers)
	}
	if len(f.SingleWritableS) != 1 || f.ConcurrentKilled != 3 || f.ConcurrentDone != 3 || f.RowsLost != 0 {
		t.Errorf("failovers: single %v, concurrent %d of %d done, %d rows lost", f.SingleWritableS, f.ConcurrentDone, f.ConcurrentKilled, f.RowsLost)
	}
}
