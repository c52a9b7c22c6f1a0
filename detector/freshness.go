package detector

import (
	"strconv"
	"time"
)

// Logged reports whether the observation carries the Raft log's time
// (LoggedAt set). Entries written without AppendedAt are not logged.
func (o Observation) Logged() bool { return !o.LoggedAt.IsZero() }

// FreshAt reports whether the observation counts as fresh for an evaluator
// that is the leader of term at time now (its own clock). The rule does not
// depend on the observing managers' clocks:
//
//   - a logged observation is fresh only if it was logged in term (the
//     same leader appended it, so the same clock stamped LoggedAt and now)
//     and now-LoggedAt is at most window; an entry logged in an earlier
//     term is never fresh (the managers republish well within the window);
//     one stamped more than window after now (the leader's clock was
//     stepped back) is not fresh either;
//   - an observation that is not logged (LoggedAt zero: written by code
//     without AppendedAt) falls back to Fresh, the observer's At.
func (o Observation) FreshAt(now time.Time, term uint64, window time.Duration) bool {
	if !o.Logged() {
		return o.Fresh(now, window)
	}
	if o.LoggedTerm != term {
		return false
	}
	age := now.Sub(o.LoggedAt)
	return age <= window && age >= -window
}

// SinceTime is when the observation's current Kind began: SinceLogged
// (the leader's clock) when logged, else Since (the observer's).
func (o Observation) SinceTime() time.Time {
	if o.Logged() && !o.SinceLogged.IsZero() {
		return o.SinceLogged
	}
	return o.Since
}

// newerThan reports whether o was stored after p: by log position (term,
// then append time) when both are logged, else by the observer's At.
func (o Observation) newerThan(p Observation) bool {
	if o.Logged() && p.Logged() {
		if o.LoggedTerm != p.LoggedTerm {
			return o.LoggedTerm > p.LoggedTerm
		}
		return o.LoggedAt.After(p.LoggedAt)
	}
	if o.Logged() != p.Logged() {
		return o.Logged() // a logged observation is newer than one from old code
	}
	return o.At.After(p.At)
}

// staleWhy says why FreshAt is false, for a verdict's reasons.
func (o Observation) staleWhy(now time.Time, term uint64, window time.Duration) string {
	switch {
	case !o.Logged():
		return "confirmed at " + o.At.Format(time.RFC3339Nano) + " by the observer's clock, not within " + window.String() + " of " + now.Format(time.RFC3339Nano)
	case o.LoggedTerm != term:
		return "logged in term " + itoa(o.LoggedTerm) + ", not in the current term " + itoa(term)
	default:
		return "logged " + now.Sub(o.LoggedAt).Round(time.Millisecond).String() + " ago by the leader's clock, window " + window.String()
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
