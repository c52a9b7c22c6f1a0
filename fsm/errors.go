package fsm

import "errors"

// Sentinel errors. Apply returns domain refusals as an error value that
// wraps one of these (with the application, epoch or server involved), so
// callers test them with errors.Is.
var (
	// ErrUnknownApp: the command names an application that is not registered.
	ErrUnknownApp = errors.New("unknown application")
	// ErrUnknownServer: the command names a server the application does not have.
	ErrUnknownServer = errors.New("unknown server")
	// ErrServerExists: AddServer for a server name or address already registered.
	ErrServerExists = errors.New("server already registered")
	// ErrServerIsMaster: RemoveServer of the current master.
	ErrServerIsMaster = errors.New("server is the current master")
	// ErrLockHeld: a failover lock is already held for the application.
	ErrLockHeld = errors.New("failover lock held")
	// ErrNoLock: the command needs a held lock and none is held.
	ErrNoLock = errors.New("no failover lock held")
	// ErrStaleEpoch: the command carries an epoch other than the held lock's.
	ErrStaleEpoch = errors.New("stale epoch")
	// ErrAntiFlap: an automatic/manual failover within last_failover_minute
	// of the last one, which was not acknowledged.
	ErrAntiFlap = errors.New("last failover too recent and not acknowledged")
	// ErrPaused: the application is paused (maintenance); no automatic failover.
	ErrPaused = errors.New("application paused")
	// ErrStaleVerdict: an AcquireLock whose Seen (the master and last epoch
	// its verdict was computed on) no longer matches the state: the master
	// or the epoch changed while the caller evaluated. Re-evaluate.
	ErrStaleVerdict = errors.New("verdict is stale")
	// ErrRetryBackoff: an automatic lock asked before the AutoRetry
	// NextAttempt that the last refused automatic failover set.
	ErrRetryBackoff = errors.New("automatic failover retry backoff")
	// ErrAutoHalted: automatic failover of the application is halted after
	// AutoRetryMaxRefusals refusals within AutoRetryWindow; an Ack clears it.
	ErrAutoHalted = errors.New("automatic failover halted after repeated refusals")
	// ErrInvalid: the command is well-formed JSON but misses required fields
	// or has values out of range.
	ErrInvalid = errors.New("invalid command")
)

// sentinels maps each sentinel to a stable code used when a response
// travels between managers (see MarshalResponse).
var sentinels = map[string]error{
	"unknown_app":      ErrUnknownApp,
	"unknown_server":   ErrUnknownServer,
	"server_exists":    ErrServerExists,
	"server_is_master": ErrServerIsMaster,
	"lock_held":        ErrLockHeld,
	"no_lock":          ErrNoLock,
	"stale_epoch":      ErrStaleEpoch,
	"anti_flap":        ErrAntiFlap,
	"paused":           ErrPaused,
	"stale_verdict":    ErrStaleVerdict,
	"retry_backoff":    ErrRetryBackoff,
	"auto_halted":      ErrAutoHalted,
	"invalid":          ErrInvalid,
}
