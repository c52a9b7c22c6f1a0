package detector

import (
	"fmt"
	"sort"
	"time"
)

// VerdictKind names the state of a master as the managers and its replicas
// see it together.
type VerdictKind string

// The verdicts. Only DeadMaster and DeadMasterAndSomeReplicas are
// actionable (Verdict.Actionable).
const (
	// Healthy: no manager has a fresh "cannot reach" observation.
	Healthy VerdictKind = "Healthy"
	// NoFreshObservation: no manager has a fresh observation of the master
	// at all (after a start or an election, until the managers publish in
	// the new term). Its value stays "NoQuorum", the name it had: it is in
	// the API's AppStatus.Verdict, and mhactl check-status reads it.
	NoFreshObservation VerdictKind = "NoQuorum"
	// UnreachableMaster: some managers cannot reach the master, but the
	// conditions of DeadMaster do not hold. No action.
	UnreachableMaster VerdictKind = "UnreachableMaster"
	// DeadMaster: a majority of managers cannot reach the master, none can,
	// and every reachable replica confirms. Act.
	DeadMaster VerdictKind = "DeadMaster"
	// DeadMasterAndSomeReplicas: as DeadMaster, but some replicas could not
	// be queried; those that could all confirm. Act (with fewer replicas).
	DeadMasterAndSomeReplicas VerdictKind = "DeadMasterAndSomeReplicas"
	// DeadMasterWithoutReplicas: the managers agree the master is dead but
	// no replica of it could be queried to confirm. No action: nothing
	// confirms and nothing could be promoted.
	DeadMasterWithoutReplicas VerdictKind = "DeadMasterWithoutReplicas"
)

// Manager is one member of the manager group.
type Manager struct {
	ID         string
	Datacenter string // "" is a datacenter name too
}

// Input is everything Evaluate looks at. It is plain data, so the leader
// builds it from the replicated state and its own replica views.
type Input struct {
	Master       string        // config name of the master
	Managers     []Manager     // ALL managers of the group (the quorum is a majority of these)
	Observations []Observation // latest observation per manager of Master (others are ignored)
	Replicas     []ReplicaView // the replicas of the app, as sampled by the evaluating manager
	Now          time.Time     // the evaluator's clock; it must be the Raft leader's (see Term)
	Window       time.Duration // detection window: older observations and samples are unknown
	// Term is the evaluator's current Raft term; the evaluator must be the
	// leader of that term. A logged observation is fresh only if it was
	// logged in this term (Observation.FreshAt).
	Term uint64

	// SecondaryCheckConfigured: secondary_check_script is set, so DeadMaster
	// also needs SecondaryCheck == true.
	SecondaryCheckConfigured bool
	// SecondaryCheck is the script's result: true = exit 0 (master
	// unreachable from the secondary network too), false = not confirmed,
	// nil = not run yet.
	SecondaryCheck *bool
}

// Verdict is the result of Evaluate.
type Verdict struct {
	Kind        VerdictKind
	Master      string
	Reachers    []string // managers with a fresh observation that reaches the master
	NonReachers []string // managers with a fresh observation that does not
	Unknown     []string // managers without a fresh observation
	Reasons     []string // why, in words, for logs and mhactl status
	// NeedSecondaryCheck: everything but the secondary check says DeadMaster;
	// run secondary_check_script and evaluate again with its result.
	NeedSecondaryCheck bool
}

// Actionable reports whether the verdict allows a failover.
func (v Verdict) Actionable() bool {
	return v.Kind == DeadMaster || v.Kind == DeadMasterAndSomeReplicas
}

// Evaluate decides what state the master is in. It is pure: same input,
// same verdict. The rules, in order:
//
//  1. Only the latest fresh observation of each listed manager counts
//     (Observation.FreshAt: logged in Term and LoggedAt within Window of
//     Now, on the leader's clock; the observer's At only for observations
//     not logged); a stale or missing one is "unknown", never "cannot
//     reach".
//  2. No fresh non-reacher: Healthy if any fresh observation, else
//     NoFreshObservation.
//  3. Non-reachers must be MORE than half of ALL managers, else
//     UnreachableMaster.
//  4. Any fresh reacher (including "alive but refusing") vetoes: a manager
//     can only publish while it is in contact with the Raft majority, so a
//     fresh "reachable" means the master is alive on the majority's side
//     of the network, and clients there may still write to it.
//  5. When managers live in more than one datacenter, the non-reachers
//     must span more than one datacenter.
//  6. Replicas: a reachable replica that is connected to the master and
//     still receives events or heartbeats refutes (UnreachableMaster).
//     Every other reachable replica of the master confirms. No reachable
//     replica: DeadMasterWithoutReplicas.
//  7. secondary_check_script, when configured, must have confirmed.
//  8. DeadMaster, or DeadMasterAndSomeReplicas when some replicas could
//     not be queried.
func Evaluate(in Input) Verdict {
	v := Verdict{Master: in.Master}
	latest := map[string]Observation{}
	for _, o := range in.Observations {
		if o.Server != in.Master {
			continue
		}
		if cur, ok := latest[o.Manager]; !ok || o.newerThan(cur) {
			latest[o.Manager] = o
		}
	}
	nonReachDCs := map[string]bool{}
	allDCs := map[string]bool{}
	for _, m := range in.Managers {
		allDCs[m.Datacenter] = true
		o, ok := latest[m.ID]
		switch {
		case !ok:
			v.Unknown = append(v.Unknown, m.ID)
		case !o.FreshAt(in.Now, in.Term, in.Window):
			v.Unknown = append(v.Unknown, m.ID)
			v.Reasons = append(v.Reasons, fmt.Sprintf("manager %s's observation of %s is stale: %s",
				m.ID, in.Master, o.staleWhy(in.Now, in.Term, in.Window)))
		case o.Reachable:
			v.Reachers = append(v.Reachers, m.ID)
			v.Reasons = append(v.Reasons, fmt.Sprintf("manager %s reaches %s (%s)", m.ID, in.Master, o.Kind))
		default:
			v.NonReachers = append(v.NonReachers, m.ID)
			nonReachDCs[m.Datacenter] = true
			v.Reasons = append(v.Reasons, fmt.Sprintf("manager %s cannot reach %s since %s (%s)",
				m.ID, in.Master, o.SinceTime().Format(time.RFC3339Nano), o.Kind))
		}
	}
	sort.Strings(v.Reachers)
	sort.Strings(v.NonReachers)
	sort.Strings(v.Unknown)
	n := len(in.Managers)

	if len(v.NonReachers) == 0 {
		if len(v.Reachers) > 0 {
			v.Kind = Healthy
		} else {
			v.Kind = NoFreshObservation
			v.Reasons = append(v.Reasons, "no manager has a fresh observation of "+in.Master)
		}
		return v
	}
	v.Kind = UnreachableMaster
	if 2*len(v.NonReachers) <= n {
		v.Reasons = append(v.Reasons, fmt.Sprintf("only %d of %d managers cannot reach %s: not a majority",
			len(v.NonReachers), n, in.Master))
		return v
	}
	if len(v.Reachers) > 0 {
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d manager(s) still reach %s: it is alive", len(v.Reachers), in.Master))
		return v
	}
	if len(allDCs) > 1 && len(nonReachDCs) < 2 {
		v.Reasons = append(v.Reasons, fmt.Sprintf("managers span %d datacenters but all that cannot reach %s are in one",
			len(allDCs), in.Master))
		return v
	}

	confirms, unknown := 0, 0
	for _, r := range in.Replicas {
		says, why := r.judge(in.Now, in.Window)
		if r.Reachable && !r.ReplicaOfMaster {
			continue // replicates from elsewhere (or not at all): no testimony about this master
		}
		switch says {
		case replicaRefutes:
			v.Reasons = append(v.Reasons, why)
			return v
		case replicaConfirms:
			confirms++
		default:
			unknown++
		}
		v.Reasons = append(v.Reasons, why)
	}
	if confirms == 0 {
		v.Kind = DeadMasterWithoutReplicas
		v.Reasons = append(v.Reasons, "no replica of "+in.Master+" could be queried to confirm")
		return v
	}
	if in.SecondaryCheckConfigured {
		switch {
		case in.SecondaryCheck == nil:
			v.NeedSecondaryCheck = true
			v.Reasons = append(v.Reasons, "waiting for secondary_check_script")
			return v
		case !*in.SecondaryCheck:
			v.Reasons = append(v.Reasons, "secondary_check_script did not confirm the failure")
			return v
		}
		v.Reasons = append(v.Reasons, "secondary_check_script confirmed the failure")
	}
	if unknown > 0 {
		v.Kind = DeadMasterAndSomeReplicas
	} else {
		v.Kind = DeadMaster
	}
	return v
}
