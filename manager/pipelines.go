package manager

import (
	"context"

	"github.com/mharaft/mharaft/failover"
)

// PhaseActivate is the journal phase whose completion means the new master
// is writable (its Done entry's time is the end of the failover as clients
// see it).
const PhaseActivate = failover.PhaseRecover + ": activate"

// deadMasterPipeline runs failover's dead-master pipeline for the named
// dead master.
func deadMasterPipeline(ctx context.Context, opts failover.Options, dead string) (*failover.Report, error) {
	return failover.DeadMaster(ctx, failover.FailoverOptions{Options: opts, DeadMaster: dead})
}
