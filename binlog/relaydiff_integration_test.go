package binlog_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/remote"
	"github.com/mharaft/mharaft/testbed"
)

// countingFS is a *remote.Client that counts its SSH sessions (every
// call is one) and the bytes they brought back.
type countingFS struct {
	c        *remote.Client
	mu       sync.Mutex
	sessions int
	bytes    int64
	calls    []string
}

func (f *countingFS) note(what string, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions++
	f.bytes += n
	f.calls = append(f.calls, fmt.Sprintf("%s (%d bytes)", what, n))
}

func (f *countingFS) Stat(ctx context.Context, p string) (int64, error) {
	n, err := f.c.Stat(ctx, p)
	f.note("stat "+filepath.Base(p), 0)
	return n, err
}

func (f *countingFS) ReadFrom(ctx context.Context, p string, off int64, w io.Writer) (int64, error) {
	n, err := f.c.ReadFrom(ctx, p, off, w)
	f.note(fmt.Sprintf("read %s from %d", filepath.Base(p), off), n)
	return n, err
}

func (f *countingFS) ReadRange(ctx context.Context, p string, off, length int64, w io.Writer) (int64, error) {
	n, err := f.c.ReadRange(ctx, p, off, length, w)
	f.note(fmt.Sprintf("read %s[%d:+%d]", filepath.Base(p), off, length), n)
	return n, err
}

func (f *countingFS) ReadFile(ctx context.Context, p string) ([]byte, error) {
	b, err := f.c.ReadFile(ctx, p)
	f.note("read "+filepath.Base(p), int64(len(b)))
	return b, err
}

func (f *countingFS) Run(ctx context.Context, cmd string) ([]byte, error) {
	t0 := time.Now()
	b, err := f.c.Run(ctx, cmd)
	f.note(fmt.Sprintf("script in %v", time.Since(t0).Round(time.Millisecond)), int64(len(b)))
	return b, err
}

// TestRelayDiffManySmallRelayLogs: the latest replica holds what the
// lagging one lacks in 94 relay logs of 8 KB (max_relay_log_size=8192),
// across a rotation of the master's binlog. The diff over SSH, from the
// lagging replica's position (in the master's previous binlog) and from a
// position 40 relay logs back in the current one, is what the file-by-file
// walk writes from the local disk, and is built in a few SSH sessions that
// bring back about the bytes from the position on: not one or two
// sessions per relay log (119 sessions, 7-37 s, before).
func TestRelayDiffManySmallRelayLogs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	small := testbed.ServerOptions{Extra: []string{"max_relay_log_size=8192"}}
	c := testbed.Start(t, testbed.Options{N: 3, Servers: []testbed.ServerOptions{{}, small, small}})
	m, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test",
		"CREATE TABLE test.r (id INT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(200))"))
	must(c.WaitCaughtUp(ctx, 20*time.Second))
	must(s2.StopIOThread(ctx))
	idx := filepath.Join(s3.DataDir, "relay-bin.index")
	before, err := binlog.ReadIndex(ctx, binlog.LocalFS{}, idx)
	must(err)
	const want = 94 // relay logs from server2's position on
	var mid posOf   // a master position 40 relay logs before the end
	rotated := false
	for {
		// ~2 KB per transaction: four per relay log.
		for range 8 {
			must(m.Exec(ctx, "INSERT INTO test.r (pad) SELECT REPEAT('x', 180) FROM test.seq_1_to_10"))
		}
		must(s3.WaitCaughtUp(ctx, m, 20*time.Second))
		names, err := binlog.ReadIndex(ctx, binlog.LocalFS{}, idx)
		must(err)
		n := len(names) - len(before) + 1
		if n >= want/2 && !rotated {
			must(m.Exec(ctx, "FLUSH BINARY LOGS"))
			rotated = true
		}
		if n >= want-40 && mid.file == "" {
			st, err := m.QueryRows(ctx, "SHOW MASTER STATUS")
			must(err)
			p, _ := strconv.ParseUint(st[0]["Position"], 10, 64)
			mid = posOf{st[0]["File"], p}
		}
		if n >= want {
			break
		}
	}
	must(s3.Exec(ctx, "STOP SLAVE"))
	p2, p3 := readPos(ctx, t, s2), readPos(ctx, t, s3)
	files, err := binlog.ReadIndex(ctx, binlog.LocalFS{}, idx)
	must(err)
	t.Logf("server3: %d relay logs; server2 read %s:%d, server3 %s:%d; mid %s:%d", len(files), p2.file, p2.pos, p3.file, p3.pos, mid.file, mid.pos)
	if p2.file == p3.file || mid.file != p3.file {
		t.Fatalf("want server2 in the master's previous binlog and mid in server3's: %v %v %v", p2, mid, p3)
	}
	ssh, err := remote.Dial(ctx, remote.Config{User: c.SSH.User, Host: c.SSH.Host, Port: c.SSH.Port,
		KeyFile: c.SSH.ClientKey, KnownHostsFile: c.SSH.KnownHosts, Timeout: 10 * time.Second})
	must(err)
	defer ssh.Close()
	for _, tc := range []struct {
		name string
		from posOf
	}{
		{"server2's position, across the master's rotation", p2},
		{"40 relay logs back in the master's current binlog", mid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The reference: the file-by-file walk over the local disk.
			local := binlog.RelayLogs{FS: binlog.LocalFS{}, Dir: s3.DataDir, Files: files, ServerID: uint32(s3.ServerID),
				ReadMasterFile: p3.file, ReadMasterPos: p3.pos}
			var wantDiff bytes.Buffer
			wantPos, wantRes, err := binlog.WriteRelayDiff(ctx, local, idx, tc.from.file, tc.from.pos, &wantDiff)
			must(err)
			// What the relay logs hold from that position on.
			var relayBytes int64
			var n int
			for i := len(files) - 1; i >= 0; i-- {
				fi, err := os.Stat(filepath.Join(s3.DataDir, files[i]))
				must(err)
				relayBytes += fi.Size()
				n++
				if files[i] == wantPos.File {
					break
				}
			}
			fs := &countingFS{c: ssh}
			rl := binlog.RelayLogs{FS: fs, Dir: s3.DataDir, ServerID: uint32(s3.ServerID), ReadMasterFile: p3.file, ReadMasterPos: p3.pos}
			var got bytes.Buffer
			t0 := time.Now()
			pos, res, err := binlog.WriteRelayDiff(ctx, rl, idx, tc.from.file, tc.from.pos, &got)
			el := time.Since(t0)
			must(err)
			t.Logf("diff from %v over %d relay logs (%d bytes): %d transactions, %d bytes in %v; %d SSH sessions brought %d bytes: %v",
				pos, n, relayBytes, res.Transactions, res.Bytes, el.Round(time.Millisecond), fs.sessions, fs.bytes, fs.calls)
			if pos != wantPos || !bytes.Equal(got.Bytes(), wantDiff.Bytes()) || res != wantRes {
				t.Fatalf("over SSH: %v %+v (%d bytes); the walk over the local disk: %v %+v (%d bytes)", pos, res, got.Len(), wantPos, wantRes, wantDiff.Len())
			}
			if res.Incomplete != nil || n < 40 {
				t.Fatalf("diff %+v over %d relay logs", res, n)
			}
			// The index and sizes, then one read of the files; the
			// bytes are those from the position's relay log on, plus
			// what the first read's estimate adds.
			if fs.sessions > 2 || fs.bytes > relayBytes+relayBytes/4+256<<10 {
				t.Errorf("%d SSH sessions brought %d bytes; want at most 2 sessions and about the %d bytes of the %d relay logs from the position on",
					fs.sessions, fs.bytes, relayBytes, n)
			}
		})
	}
}
