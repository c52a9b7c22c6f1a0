package dialect

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/go-sql-driver/mysql"
)

// Kinds of a reachability classification (Classify). The detector's
// observations use the same strings. Reachable is true for KindOK,
// KindAliveRefusing, KindAuthError and KindServerError: the server
// answered, so it is alive (MHA's rule).
const (
	KindOK            = "ok"             // no error
	KindAliveRefusing = "alive-refusing" // the server answered with an error that means "alive but refusing" (1040, 1203, 1129, ...)
	KindAuthError     = "auth-error"     // our login is refused (1044, 1045, 1130, 3118, 4151: see loginRefusedCodes): alive, but our credentials are refused
	KindServerError   = "server-error"   // the server answered with another error: alive
	KindRefused       = "refused"        // TCP connection refused: nothing listens (mysqld is gone)
	KindTimeout       = "timeout"        // no answer within the timeout (host cut off, mysqld paused)
	KindUnreachable   = "unreachable"    // no route to host / network unreachable
	KindLost          = "lost"           // an established connection broke (reset, EOF, invalid connection)
	KindShutdown      = "shutting-down"  // 1053: server shutdown in progress
	KindError         = "error"          // any other failure to reach the server (DNS, TLS, protocol)
)

// aliveErrorCodes are MySQL errors that prove the server is up although it
// refuses us: MHA's @ALIVE_ERROR_CODES (lib/MHA/ManagerConst.pm) plus the
// "account locked" errors of MariaDB (4151) and MySQL (3118). Those of
// loginRefusedCodes are reported as KindAuthError, the rest as
// KindAliveRefusing.
var aliveErrorCodes = map[uint16]bool{
	1040: true, // ER_CON_COUNT_ERROR
	1042: true, // ER_BAD_HOST_ERROR
	1043: true, // ER_HANDSHAKE_ERROR
	1044: true, // ER_DBACCESS_DENIED_ERROR
	1045: true, // ER_ACCESS_DENIED_ERROR
	1129: true, // ER_HOST_IS_BLOCKED
	1130: true, // ER_HOST_NOT_PRIVILEGED
	1203: true, // ER_TOO_MANY_USER_CONNECTIONS
	1226: true, // ER_USER_LIMIT_REACHED
	1251: true, // ER_NOT_SUPPORTED_AUTH_MODE
	1275: true, // ER_SERVER_IS_IN_SECURE_AUTH_MODE
	3118: true, // ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL)
	4151: true, // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)
}

// loginRefusedCodes are the alive errors that refuse our account itself
// (password, grant, host or lock): the server is up, but this manager
// cannot log in until an operator fixes its credentials or the account.
// They are KindAuthError.
var loginRefusedCodes = map[uint16]bool{
	1044: true, // ER_DBACCESS_DENIED_ERROR
	1045: true, // ER_ACCESS_DENIED_ERROR (wrong password, no such user)
	1130: true, // ER_HOST_NOT_PRIVILEGED (no account for our host)
	3118: true, // ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL)
	4151: true, // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)
}

// IsAliveError reports whether a MySQL error number means "alive but
// refusing" (see aliveErrorCodes).
func IsAliveError(code uint16) bool { return aliveErrorCodes[code] }

// Classify maps an error of a connect, ping or statement to a Kind and
// whether the server counts as reachable (it answered). A nil error is
// KindOK. It is the one classifier of the project: the detector's
// observations and the failover's "is it dead" decisions both use it, so
// a server is never dead for one and alive for the other. It looks at
// error values only (errors.Is / errors.As through every wrapping), never
// at error text. A MySQL error can only come from a live server, so it is
// looked at first; 1053 (shutdown in progress) counts as not reachable.
func Classify(err error) (kind string, reachable bool) {
	if err == nil {
		return KindOK, true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch {
		case loginRefusedCodes[me.Number]:
			return KindAuthError, true
		case IsAliveError(me.Number):
			return KindAliveRefusing, true
		case me.Number == 1053: // ER_SERVER_SHUTDOWN
			return KindShutdown, false
		default: // including 1927 ER_CONNECTION_KILLED: the server is up
			return KindServerError, true
		}
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused, false
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return KindUnreachable, false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return KindTimeout, false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindTimeout, false
	}
	if errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return KindLost, false
	}
	return KindError, false
}

// Unreachable reports whether err means the server did not answer
// (Classify's reachable is false). nil is reachable.
func Unreachable(err error) bool {
	_, reachable := Classify(err)
	return !reachable
}
