package binlog

import (
	"fmt"
	"path/filepath"
	"time"
)

// Timestamp formats t like MHA's file names: YYYYMMDDhhmmss.
func Timestamp(t time.Time) string { return t.Format("20060102150405") }

// SavedMasterBinlogName is saved_master_binlog_from_HOST_PORT_TS.binlog, the
// dead master's saved tail.
func SavedMasterBinlogName(host string, port int, ts string) string {
	return fmt.Sprintf("saved_master_binlog_from_%s_%d_%s.binlog", host, port, ts)
}

// RelayDiffName is relay_from_read_to_latest_HOST_PORT_TS.binlog, the
// relay-log diff generated for the replica HOST:PORT.
func RelayDiffName(host string, port int, ts string) string {
	return fmt.Sprintf("relay_from_read_to_latest_%s_%d_%s.binlog", host, port, ts)
}

// TotalBinlogName is total_binlog_for_HOST_PORT.TS.binlog, everything
// applied to HOST:PORT concatenated.
func TotalBinlogName(host string, port int, ts string) string {
	return fmt.Sprintf("total_binlog_for_%s_%d.%s.binlog", host, port, ts)
}

// ConcatFiles writes the binlog files in order into out as one binlog (the
// total_binlog_for_... artifact): the first file whole, the others without
// their magic number and equivalent format description events.
func ConcatFiles(files []string, out string) (CopyResult, error) {
	// implemented in concat.go
	return concatFiles(files, filepath.Clean(out))
}
