package manager

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mharaft/mharaft/fsm"
)

// TestAwaitDivergenceCheck: a rejoin that comes while the leader checks a
// returning former master for divergence (the operator started it and
// rejoined it at once: e2e's restoreAll did, and was refused "a failover
// holds the lock") waits for the check's lock to go, then proceeds; any
// other lock is reported at once.
func TestAwaitDivergenceCheck(t *testing.T) {
	for _, tc := range []struct {
		kind     string
		release  time.Duration // when the lock is released
		wantLock bool          // the state returned still holds it
		least    time.Duration // the wait at least
	}{
		{fsm.KindDivergence, 400 * time.Millisecond, false, 400 * time.Millisecond},
		{fsm.KindAuto, 400 * time.Millisecond, true, 0},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			f := fsm.New()
			apply := func(cmd []byte) any {
				return f.Apply(&raft.Log{Type: raft.LogCommand, Term: 1, AppendedAt: time.Now(), Data: cmd})
			}
			s1 := fsm.Server{Name: "server1", Hostname: "127.0.0.1", Port: 3306}
			s2 := fsm.Server{Name: "server2", Hostname: "127.0.0.1", Port: 3307}
			if err, ok := apply(fsm.EncodeRegisterApp(fsm.RegisterAppCmd{App: "app1", Servers: []fsm.Server{s1, s2}, Master: s2.Addr(), At: time.Now()})).(error); ok {
				t.Fatal(err)
			}
			resp := apply(fsm.EncodeAcquireLock(fsm.AcquireLockCmd{App: "app1", Holder: "m1", Kind: tc.kind, OldMaster: s1.Addr(), At: time.Now()}))
			l, ok := resp.(fsm.Lock)
			if !ok {
				t.Fatalf("acquire %s lock: %v", tc.kind, resp)
			}
			release := time.AfterFunc(tc.release, func() {
				apply(fsm.EncodeReleaseLock(fsm.ReleaseLockCmd{App: "app1", Epoch: l.Epoch, Result: fsm.ResultSuccess, At: time.Now()}))
			})
			defer release.Stop()
			m := &Manager{fsm: f, running: map[string]bool{}}
			start := time.Now()
			st, _ := m.awaitDivergenceCheck(context.Background(), "app1")
			waited := time.Since(start)
			if (st.Lock != nil) != tc.wantLock || waited < tc.least || waited > rejoinCheckWait {
				t.Errorf("%s lock released after %s: returned after %s holding a lock %v; want a lock %v, after at least %s",
					tc.kind, tc.release, waited.Round(time.Millisecond), st.Lock != nil, tc.wantLock, tc.least)
			}
		})
	}
}
