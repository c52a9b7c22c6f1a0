package jepsen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// A server's general log across restarts. mariadbd keeps mysql.general_log
// open for writing and marks its CSV meta file (general_log.CSM) crashed
// while it is open; after a kill -9 the mark stays. The next start then
// auto-repairs the table on the first statements it logs (error.log: "Table
// 'general_log' is marked as crashed and should be repaired"), and when
// several connections log at once during that repair MariaDB 10.11 can
// die with signal 11 (seen in a campaign's refused-failover round and
// reproduced on a lone server: 1 start in ~6 under 8 connecting clients).
// The repair also rewrites the CSV up to its first unreadable row.
//
// So a killed server is never restarted on its old log: RestartServer moves
// general_log.CSV aside as general_log.CSV.NNN (001, 002, ... in restart
// order) and gives the server an empty CSV with a clean meta file, which it
// opens without any repair. Every reader takes the saved parts in order,
// then the current file (GeneralLogParts).

// csvMetaClean is a CSV engine meta file (.CSM) of an empty table that was
// closed cleanly: check header 0xfe, version 1, four 8-byte counters (rows,
// checkpoint, auto_increment, forced flushes) at 0, crashed flag 0 — the
// file mariadb-install-db leaves.
var csvMetaClean = append([]byte{0xfe, 0x01}, make([]byte, 33)...)

// GeneralLogParts lists d's general log files oldest first: the parts
// saved by RestartServer (general_log.CSV.001, ...), then the current
// general_log.CSV. A part's position in the list never changes: new parts
// only come before the current file, which stays last.
func (d *DBHost) GeneralLogParts() []string {
	parts, _ := filepath.Glob(d.GeneralLogPath() + ".[0-9][0-9][0-9]")
	sort.Strings(parts)
	return append(parts, d.GeneralLogPath())
}

// RestartServer starts d's stopped (killed) mariadbd again on a fresh
// general log, keeping the old one as the next saved part.
func (d *DBHost) RestartServer(ctx context.Context) error {
	if d.Server.Running() {
		return fmt.Errorf("restart %s: mariadbd is still running; kill it first", d.Name())
	}
	if err := d.rotateGeneralLog(); err != nil {
		return err
	}
	return d.Server.Start(ctx)
}

// rotateGeneralLog saves general_log.CSV as the next part and leaves an
// empty table with a clean meta file. The server must be stopped.
func (d *DBHost) rotateGeneralLog() error {
	cur := d.GeneralLogPath()
	next := fmt.Sprintf("%s.%03d", cur, len(d.GeneralLogParts()))
	if _, err := os.Stat(next); err == nil {
		return fmt.Errorf("save the general log of %s: %s exists already; remove stray parts from %s", d.Name(), next, filepath.Dir(cur))
	}
	if err := os.Rename(cur, next); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("save the general log of %s as %s: %w", d.Name(), next, err)
	}
	if err := os.WriteFile(cur, nil, 0o660); err != nil {
		return fmt.Errorf("create an empty general log for %s at %s: %w", d.Name(), cur, err)
	}
	meta := filepath.Join(filepath.Dir(cur), "general_log.CSM")
	if err := os.WriteFile(meta, csvMetaClean, 0o660); err != nil {
		return fmt.Errorf("reset the general log meta file of %s at %s: %w", d.Name(), meta, err)
	}
	return nil
}

// readGeneralLog parses every part of d's general log, in order. Each
// part is parsed on its own: connection ids start again after a restart.
func readGeneralLog(d *DBHost) ([]GenLogRecord, error) {
	var out []GenLogRecord
	for _, p := range d.GeneralLogParts() {
		b, err := os.ReadFile(p)
		if err != nil {
			return out, fmt.Errorf("read the general log of %s: %w", d.Name(), err)
		}
		recs, err := ParseGeneralLogCSV(b, time.Local)
		out = append(out, recs...)
		if err != nil {
			return out, fmt.Errorf("general log of %s (%s): %w", d.Name(), p, err)
		}
	}
	return out, nil
}

// logPos is a position in a server's general log: a byte offset in one
// of its parts (an index into GeneralLogParts).
type logPos struct {
	Part int
	Off  int64
}

// readNewRecords parses the complete records of d's general log from pos
// on, through every later part, and returns the position after them.
func readNewRecords(d *DBHost, pos logPos) ([]GenLogRecord, logPos) {
	parts := d.GeneralLogParts()
	var out []GenLogRecord
	for i := pos.Part; i < len(parts); i++ {
		off := int64(0)
		if i == pos.Part {
			off = pos.Off
		}
		recs, next, ok := readFrom(parts[i], off)
		if !ok {
			// The current file between a rotation's rename and its
			// re-creation: nothing more to read yet.
			break
		}
		out = append(out, recs...)
		pos = logPos{Part: i, Off: next}
	}
	return out, pos
}

// readFrom parses the complete records of path from offset on and returns
// the offset after them; ok is false when the file cannot be read.
func readFrom(path string, offset int64) (recs []GenLogRecord, next int64, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, offset, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, offset, false
	}
	if fi.Size() <= offset {
		return nil, offset, true
	}
	buf := make([]byte, fi.Size()-offset)
	n, _ := f.ReadAt(buf, offset)
	buf = buf[:n]
	end := bytes.LastIndexByte(buf, '\n') + 1
	recs, _ = ParseGeneralLogCSV(buf[:end], time.Local)
	return recs, offset + int64(end), true
}

// logOffsets are the current ends of the DB hosts' general logs.
func logOffsets(env *Env) map[string]logPos {
	offsets := map[string]logPos{}
	for _, d := range env.DBs {
		parts := d.GeneralLogParts()
		pos := logPos{Part: len(parts) - 1}
		if fi, err := os.Stat(parts[len(parts)-1]); err == nil {
			pos.Off = fi.Size()
		}
		offsets[d.Name()] = pos
	}
	return offsets
}
