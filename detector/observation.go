package detector

import (
	"time"

	"github.com/mharaft/mharaft/dialect"
)

// Kinds of an Observation. Reachable is true for KindOK, KindAliveRefusing
// and KindAuthError: the server answered, so it is alive (MHA's rule).
const (
	KindOK            = "ok"             // connected and the ping (ping_type) succeeded
	KindAliveRefusing = "alive-refusing" // the server answered with an error that means "alive but refusing" (1040, 1203, 1129, ...)
	KindAuthError     = "auth-error"     // our login is refused (1044, 1045, 1130, 3118, 4151): alive, but our credentials are refused
	KindServerError   = "server-error"   // the server answered a SELECT ping with another error: alive
	KindRefused       = "refused"        // TCP connection refused: nothing listens (mysqld is gone)
	KindTimeout       = "timeout"        // no answer within the connect/ping timeout (host cut off, mysqld paused)
	KindUnreachable   = "unreachable"    // no route to host / network unreachable
	KindLost          = "lost"           // an established connection broke and no reconnect was tried yet
	KindShutdown      = "shutting-down"  // 1053: server shutdown in progress
	KindWriteFailed   = "write-failed"   // ping_type=INSERT and the INSERT failed: counted as a failure, as in MHA
	KindError         = "error"          // any other failure to reach the server (DNS, TLS, protocol)
)

// Observation is what one manager saw of one server at one moment. It is
// the unit that managers share through the replicated state: the latest
// Observation per (App, Manager, Server) is what Evaluate reads.
type Observation struct {
	App       string    // application name ("app1")
	Manager   string    // ID of the manager that observed
	Server    string    // config name of the observed server ("server1")
	Reachable bool      // the server answered (Kind ok, alive-refusing, auth-error, server-error)
	Kind      string    // one of the Kind constants
	Since     time.Time // when this manager first saw the current Kind
	At        time.Time // when this manager last confirmed the current Kind
	Detail    string    // the error text; never contains a password

	// The Raft log's clock (see FreshAt): LoggedAt is when the leader
	// appended the entry that stored this observation (its AppendedAt),
	// LoggedTerm that leader's term, SinceLogged the LoggedAt of the first
	// entry with the current Kind. Zero: not logged (At/Since are used).
	LoggedAt    time.Time
	LoggedTerm  uint64
	SinceLogged time.Time
}

// Fresh reports whether the observation was confirmed within window before
// now, on the observer's clock. Evaluate uses FreshAt, which prefers the
// Raft log's clock; Fresh is the fallback for observations not logged.
func (o Observation) Fresh(now time.Time, window time.Duration) bool {
	return !o.At.IsZero() && now.Sub(o.At) <= window
}

// aliveErrorCodes are MySQL errors that prove the server is up although it
// refuses us: MHA's @ALIVE_ERROR_CODES (lib/MHA/ManagerConst.pm) plus the
// "account locked" errors of MariaDB (4151) and MySQL (3118). 1044, 1045,
// 1130, 3118 and 4151 (our login is refused) are reported as KindAuthError,
// the rest as KindAliveRefusing (dialect.Classify).
var aliveErrorCodes = map[uint16]string{
	1040: "ER_CON_COUNT_ERROR",
	1042: "ER_BAD_HOST_ERROR",
	1043: "ER_HANDSHAKE_ERROR",
	1044: "ER_DBACCESS_DENIED_ERROR",
	1045: "ER_ACCESS_DENIED_ERROR",
	1129: "ER_HOST_IS_BLOCKED",
	1130: "ER_HOST_NOT_PRIVILEGED",
	1203: "ER_TOO_MANY_USER_CONNECTIONS",
	1226: "ER_USER_LIMIT_REACHED",
	1251: "ER_NOT_SUPPORTED_AUTH_MODE",
	1275: "ER_SERVER_IS_IN_SECURE_AUTH_MODE",
	3118: "ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL)",
	4151: "ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)",
}

// IsAliveError reports whether a MySQL error number means "alive but
// refusing" (see aliveErrorCodes).
func IsAliveError(code uint16) bool {
	_, ok := aliveErrorCodes[code]
	return ok
}

// Classify maps an error of a connect or ping to an observation Kind and
// whether the server counts as reachable. A nil error is KindOK. It is
// dialect.Classify, the one classifier that the failover uses too (the
// Kind constants here have the same values as dialect's).
func Classify(err error) (kind string, reachable bool) {
	return dialect.Classify(err)
}
