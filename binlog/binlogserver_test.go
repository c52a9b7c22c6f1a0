package binlog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSaveBinlogServerTail: a binlog server's copy (no index; files named
// as the master's, plus unrelated files and a higher number that sorts
// before as text) gives exactly the tail the master's directory with its
// index gives, over a shell (one listing, one read) and the local disk; a
// directory that does not exist or holds no such binlog is an error.
func TestSaveBinlogServerTail(t *testing.T) {
	ctx := context.Background()
	master := rotatedCopy(t)
	server := t.TempDir()
	for _, n := range []string{"mysql-bin.000001", "mysql-bin.000002", "mysql-bin.000003"} {
		b, err := os.ReadFile(filepath.Join(master, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(server, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"notes.txt", "other-bin.000004", "mysql-bin.index.bak"} {
		if err := os.WriteFile(filepath.Join(server, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var want bytes.Buffer
	wres, err := SaveMasterTail(ctx, LocalFS{}, master, "", "mysql-bin.000002", 4, &want)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		fs   FS
	}{{"shell", &shellFS{}}, {"local", LocalFS{}}} {
		t.Run(tc.name, func(t *testing.T) {
			var got bytes.Buffer
			gres, err := SaveBinlogServerTail(ctx, tc.fs, server, "mysql-bin.000002", 4, &got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(want.Bytes(), got.Bytes()) {
				t.Errorf("binlog server tail: %d bytes, master's %d; they differ", got.Len(), want.Len())
			}
			if gres.EndFile != wres.EndFile || gres.EndPos != wres.EndPos || gres.Transactions != wres.Transactions ||
				strings.Join(gres.Files, ",") != "mysql-bin.000002,mysql-bin.000003" {
				t.Errorf("results differ:\nbinlog server %+v\nmaster        %+v", gres, wres)
			}
			if sh, ok := tc.fs.(*shellFS); ok && sh.runs != 2 {
				t.Errorf("ran %d commands, want 2 (list, read)", sh.runs)
			}
		})
	}
	names, err := ListBinlogDir(ctx, &shellFS{}, server, "")
	if err != nil || strings.Join(names, ",") != "mysql-bin.000001,mysql-bin.000002,mysql-bin.000003,other-bin.000004" {
		t.Errorf("ListBinlogDir any base: %v, %v", names, err)
	}
	for _, fs := range []FS{&shellFS{}, LocalFS{}} {
		if _, err := SaveBinlogServerTail(ctx, fs, filepath.Join(server, "missing"), "mysql-bin.000002", 4, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "missing") {
			t.Errorf("%T: missing directory: %v", fs, err)
		}
		if _, err := SaveBinlogServerTail(ctx, fs, t.TempDir(), "mysql-bin.000002", 4, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no binlog file named mysql-bin.<number>") {
			t.Errorf("%T: empty directory: %v", fs, err)
		}
		if _, err := SaveBinlogServerTail(ctx, fs, server, "mysql-bin.000009", 4, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "mysql-bin.000009") {
			t.Errorf("%T: start file not there: %v", fs, err)
		}
	}
}
