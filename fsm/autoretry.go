package fsm

import (
	"fmt"
	"time"
)

// AutoLockRefusal predicts the FSM's refusal of an automatic AcquireLock
// (without TakeOver or Seen) at time at: "" when it would be granted, else
// the refusal's message (lock held, paused, automatic failover halted,
// retry backoff, anti-flapping). The manager calls it before proposing, so
// a refused lock does not cost a Raft entry on every evaluation; the FSM
// stays the authority and applies the same rules (lockRefusal).
func (a *AppState) AutoLockRefusal(at time.Time) string {
	if err := heldRefusal(a, KindAuto); err != nil {
		return err.Error()
	}
	if err := lockRefusal(a, KindAuto, false, at); err != nil {
		return err.Error()
	}
	return ""
}

// heldRefusal refuses a new lock while one is held.
func heldRefusal(s *AppState, kind string) error {
	if s.Lock == nil {
		return nil
	}
	return fmt.Errorf("acquire %s lock for app %q: held by %s at epoch %d (%s since %s): %w",
		kind, s.Name, s.Lock.Holder, s.Lock.Epoch, s.Lock.Kind, s.Lock.Started.Format(time.RFC3339), ErrLockHeld)
}

// lockRefusal applies the policies to a new lock of kind at time at (the
// lock is known to be free): pause, halted and backoff for automatic locks,
// anti-flapping for automatic and manual ones (unless ignoreLastFailover).
func lockRefusal(s *AppState, kind string, ignoreLastFailover bool, at time.Time) error {
	if kind == KindAuto {
		if s.Paused {
			return fmt.Errorf("acquire auto lock for app %q: paused by %s: %w", s.Name, s.PausedBy, ErrPaused)
		}
		if r := s.AutoRetry; r != nil && r.Halted {
			return fmt.Errorf("acquire auto lock for app %q: %s; fix the cause and run `mhactl ack --app %s`: %w",
				s.Name, r.HaltReason, s.Name, ErrAutoHalted)
		}
		if r := s.AutoRetry; r != nil && at.Before(r.NextAttempt) {
			return fmt.Errorf("acquire auto lock for app %q: %d automatic failover(s) refused since %s (last: %s); next attempt at %s: %w",
				s.Name, r.Refusals, r.WindowStart.Format(time.RFC3339), r.LastReason, r.NextAttempt.Format(time.RFC3339Nano), ErrRetryBackoff)
		}
	}
	checkFlap := kind == KindAuto || (kind == KindManual && !ignoreLastFailover)
	if lf := s.LastFailover; checkFlap && lf != nil && !lf.Acknowledged {
		window := time.Duration(s.LastFailoverMinute) * time.Minute
		if at.Sub(lf.Finished) < window {
			return fmt.Errorf("acquire %s lock for app %q: last failover (epoch %d) finished at %s, less than %d minutes ago and not acknowledged (`mhactl ack --app %s`): %w",
				kind, s.Name, lf.Epoch, lf.Finished.Format(time.RFC3339), s.LastFailoverMinute, s.Name, ErrAntiFlap)
		}
	}
	return nil
}

// noteAutoRefusal counts a refused automatic failover released at at:
// it sets the backoff and halts automatic failover at the
// AutoRetryMaxRefusals-th refusal within AutoRetryWindow.
func noteAutoRefusal(s *AppState, epoch uint64, reason string, at time.Time) {
	r := s.AutoRetry
	if r == nil {
		r = &AutoRetry{}
		s.AutoRetry = r
	}
	if r.Refusals == 0 || at.Sub(r.WindowStart) > AutoRetryWindow {
		r.Refusals, r.WindowStart = 0, at
	}
	r.Refusals++
	r.LastRefusal, r.LastReason = at, reason
	r.NextAttempt = at.Add(autoBackoff(r.Refusals))
	if r.Refusals >= AutoRetryMaxRefusals && !r.Halted {
		r.Halted, r.HaltedAt = true, at
		r.HaltReason = fmt.Sprintf("automatic failover halted: %d automatic failovers refused between %s and %s (last at epoch %d: %s)",
			r.Refusals, r.WindowStart.Format(time.RFC3339), at.Format(time.RFC3339), epoch, reason)
	}
}

// resetAutoRetry clears the counters; Halted survives unless all is set.
func resetAutoRetry(s *AppState, all bool) {
	if r := s.AutoRetry; r != nil && r.Halted && !all {
		s.AutoRetry = &AutoRetry{Halted: true, HaltReason: r.HaltReason, HaltedAt: r.HaltedAt}
		return
	}
	s.AutoRetry = nil
}

// addRefusedHistory writes the history entry of a refused attempt, or
// counts it in the last entry when that is the same refusal (same kind,
// old master and summary), so a refusal that repeats shows once.
func addRefusedHistory(a *app, h HistoryEntry) {
	if n := len(a.history); n > 0 {
		last := &a.history[n-1]
		if last.Result == ResultRefused && last.Kind == h.Kind && last.OldMaster == h.OldMaster && last.Summary == h.Summary {
			if last.FirstEpoch == 0 {
				last.FirstEpoch = last.Epoch
			}
			last.Attempts = max(last.Attempts, 1) + 1
			last.Epoch, last.Holder, last.Finished, last.NewMaster = h.Epoch, h.Holder, h.Finished, h.NewMaster
			return
		}
	}
	addHistory(a, h)
}
