package binlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mharaft/mharaft/internal/secret"
)

func concatFiles(files []string, out string) (CopyResult, error) {
	if len(files) == 0 {
		return CopyResult{}, fmt.Errorf("concat into %s: no files", out)
	}
	f, err := secret.Create(out)
	if err != nil {
		return CopyResult{}, fmt.Errorf("concat: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	c := &txCopier{out: bw}
	var first Head
	for i, name := range files {
		r, err := Open(name)
		if err != nil {
			f.Close()
			return c.res, fmt.Errorf("concat into %s: %w", out, err)
		}
		if i == 0 {
			first, err = ReadHead(context.Background(), LocalFS{}, name)
			if err != nil {
				r.Close()
				f.Close()
				return c.res, fmt.Errorf("concat into %s: %w", out, err)
			}
			if err := c.writeHeader(first.FDE); err != nil {
				r.Close()
				f.Close()
				return c.res, err
			}
		}
		err = copyEvents(context.Background(), c, r, 0, first)
		r.Close()
		c.finish(err)
		if !errors.Is(err, io.EOF) {
			f.Close()
			return c.res, fmt.Errorf("concat %s into %s: %w", name, out, err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return c.res, fmt.Errorf("concat into %s: %w", out, err)
	}
	return c.res, f.Close()
}
