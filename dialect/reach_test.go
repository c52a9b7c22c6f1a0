package dialect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// TestClassify: every error is classified by value through any wrapping,
// and "no route to host" is unreachable (the failover once treated it as
// an answer, the detector as dead).
func TestClassify(t *testing.T) {
	wrap := func(err error) error {
		return fmt.Errorf("connect to server1(127.0.0.1:3306): %w", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: err}})
	}
	cases := []struct {
		name      string
		err       error
		kind      string
		reachable bool
	}{
		{"nil", nil, KindOK, true},
		{"ECONNREFUSED", wrap(syscall.ECONNREFUSED), KindRefused, false},
		{"EHOSTUNREACH", wrap(syscall.EHOSTUNREACH), KindUnreachable, false},
		{"ENETUNREACH", wrap(syscall.ENETUNREACH), KindUnreachable, false},
		{"context deadline", fmt.Errorf("read state: %w", context.DeadlineExceeded), KindTimeout, false},
		{"i/o timeout", fmt.Errorf("x: %w", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}), KindTimeout, false},
		{"invalid connection", fmt.Errorf("x: %w", mysql.ErrInvalidConn), KindLost, false},
		{"ECONNRESET", wrap(syscall.ECONNRESET), KindLost, false},
		{"plain EOF", fmt.Errorf("x: %w", io.EOF), KindLost, false},
		{"unexpected EOF", fmt.Errorf("x: %w", io.ErrUnexpectedEOF), KindLost, false},
		{"1045 access denied", fmt.Errorf("x: %w", &mysql.MySQLError{Number: 1045, Message: "Access denied"}), KindAuthError, true},
		{"1044 db access denied", fmt.Errorf("x: %w", &mysql.MySQLError{Number: 1044}), KindAuthError, true},
		{"1130 host not privileged", fmt.Errorf("x: %w", &mysql.MySQLError{Number: 1130}), KindAuthError, true},
		{"3118 account locked (MySQL)", fmt.Errorf("x: %w", &mysql.MySQLError{Number: 3118}), KindAuthError, true},
		{"4151 account locked (MariaDB)", fmt.Errorf("x: %w", &mysql.MySQLError{Number: 4151}), KindAuthError, true},
		{"1129 host blocked", fmt.Errorf("x: %w", &mysql.MySQLError{Number: 1129}), KindAliveRefusing, true},
		{"1040 too many connections", fmt.Errorf("x: %w", &mysql.MySQLError{Number: 1040}), KindAliveRefusing, true},
		{"1053 shutdown", fmt.Errorf("x: %w", &mysql.MySQLError{Number: 1053}), KindShutdown, false},
		{"1927 connection killed", fmt.Errorf("x: %w", &mysql.MySQLError{Number: 1927}), KindServerError, true},
		{"other", errors.New("tls: handshake failure"), KindError, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kind, reachable := Classify(tc.err)
			if kind != tc.kind || reachable != tc.reachable {
				t.Errorf("Classify(%v) = %s, %v; want %s, %v", tc.err, kind, reachable, tc.kind, tc.reachable)
			}
			if Unreachable(tc.err) == tc.reachable {
				t.Errorf("Unreachable(%v) = %v, want %v", tc.err, !tc.reachable, !tc.reachable)
			}
		})
	}
}
