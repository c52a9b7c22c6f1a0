package jepsen

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startListener runs a tiny TCP listener (sshd-free: bash's /dev/tcp is
// client-only, so use python3's socket) on port 9 inside h and returns its
// address.
func startListener(t *testing.T, h *NetHost) string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", h.NS, "python3", "-c",
		fmt.Sprintf("import socket\ns=socket.socket()\ns.bind(('%s',9))\ns.listen(64)\nwhile True:\n  c,_=s.accept(); c.close()", h.IP))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := h.IP + ":9"
	if err := waitTCP(t.Context(), addr, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return addr
}

// nsDial connects to addr from inside h's namespace.
func nsDial(h *NetHost, addr string) error {
	hp := strings.Split(addr, ":")
	out, err := exec.Command("ip", "netns", "exec", h.NS, "timeout", "1", "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", hp[0], hp[1])).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dial %s from %s: %w: %s", addr, h.Name, err, out)
	}
	return nil
}
