package testbed

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// TestFreePort: ports are new, below the ephemeral range, bindable, and
// locked against other processes.
func TestFreePort(t *testing.T) {
	top := ephemeralStart()
	seen := map[int]bool{}
	for range 50 {
		port, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		if top-lowestPort >= 1000 && (port < lowestPort || port >= top) {
			t.Errorf("port %d is outside [%d, %d)", port, lowestPort, top)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("bind the port FreePort gave: %v", err)
		}
		l.Close()
		// Another process opening the port's lock file cannot take it
		// (flock conflicts between open files, also within one process).
		f, err := os.Open(filepath.Join(os.TempDir(), "mharaft-ports", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("lock file of port %d: %v", port, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			t.Errorf("port %d: its lock file could be locked again", port)
		}
		f.Close()
	}
}
