package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux this runs on).
const clockTicks = 100

// procSample is one process's CPU time and resident memory.
type procSample struct {
	At       time.Time
	CPUTicks uint64 // utime + stime
	RSSBytes uint64 // VmRSS
}

// sampleProc reads /proc/PID/stat (utime, stime) and /proc/PID/status (VmRSS).
func sampleProc(pid int) (procSample, error) {
	s := procSample{At: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read the CPU time of process %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces: fields count from after ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// After ")": state(3) ... utime is field 14, stime 15 (1-based): f[11], f[12].
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	s.CPUTicks = ut + st
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read the memory of process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			s.RSSBytes = kb * 1024
		}
	}
	return s, nil
}

// cores is the CPU used between a and b, in cores (1 = one core busy).
func cores(a, b procSample) float64 {
	d := b.At.Sub(a.At).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(b.CPUTicks-a.CPUTicks) / clockTicks / d
}

// raftLastIndex returns the last index of the Raft log in dataDir/raft.db
// of a running mhanode: the file is copied first (bbolt locks the live
// file; its two meta pages keep a copy taken between commits readable),
// and a copy that cannot be read is taken again. It reads any version of
// mhanode, so the baseline binary is measured the same way.
func raftLastIndex(dataDir string) (uint64, error) {
	var last error
	for range 5 {
		n, err := copyAndReadLastIndex(filepath.Join(dataDir, "raft.db"))
		if err == nil {
			return n, nil
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return 0, last
}

func copyAndReadLastIndex(path string) (uint64, error) {
	src, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bench-copy-*.db")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return 0, err
	}
	tmp.Close()
	db, err := bbolt.Open(tmp.Name(), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, fmt.Errorf("open a copy of %s: %w", path, err)
	}
	defer db.Close()
	var idx uint64
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("logs"))
		if b == nil {
			return fmt.Errorf("%s has no logs bucket", path)
		}
		k, _ := b.Cursor().Last()
		if len(k) == 8 {
			idx = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return idx, err
}

// entriesByType reads mharaft_raft_entries_applied_total{type=...} from a
// manager's /metrics (with the token); an mhanode without that metric (the
// baseline) gives an empty map and no error.
func entriesByType(ctx context.Context, httpAddr, token string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the metrics of %s: %w", httpAddr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the metrics of %s: %s", httpAddr, resp.Status)
	}
	out := map[string]float64{}
	const prefix = `mharaft_raft_entries_applied_total{type="`
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		typ, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err == nil {
			out[typ] = v
		}
	}
	return out, sc.Err()
}
