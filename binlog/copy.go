package binlog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/mharaft/mharaft/internal/secret"
)

// Incomplete describes a tail that was not copied because it does not end
// a transaction (a relay log or binlog that stops mid-transaction).
type Incomplete struct {
	File   string // where the first dropped event starts
	Offset int64
	Bytes  int64 // bytes dropped
	Events int   // complete events dropped (plus possibly a partial one)
	// Err is the read error that ended the input, if it did not end cleanly
	// (a half-written last event: ErrTruncated).
	Err error
}

func (i *Incomplete) String() string {
	s := fmt.Sprintf("dropped incomplete transaction at %s:%d (%d events, %d bytes)", i.File, i.Offset, i.Events, i.Bytes)
	if i.Err != nil {
		s += ": " + i.Err.Error()
	}
	return s
}

// CopyResult is what a diff or a save wrote.
type CopyResult struct {
	Bytes        int64 // bytes written, header included
	Events       int   // events written after the header
	Transactions int   // complete transactions written
	// EndFile and EndPos: the source position just after the last event
	// written.
	EndFile string
	EndPos  int64
	// LastGTID is the GTID of the last complete transaction written ("" if
	// none had one).
	LastGTID string
	// Incomplete is set when a tail was dropped.
	Incomplete *Incomplete
}

// txCopier writes raw events, holding back those of an open transaction
// until it ends, so that its output always ends at a transaction boundary.
// Memory use is bounded by the largest transaction.
type txCopier struct {
	out      io.Writer
	pending  bytes.Buffer
	pendN    int
	pendFile string
	pendOff  int64
	pendGTID string
	tr       txTracker
	res      CopyResult
	// skipTx drops the next skipTx complete transactions instead of
	// writing them (SkipTransactions).
	skipTx int
	// onTx, when set, is called with the GTID ("" if none) of every
	// complete transaction, written or skipped.
	onTx func(gtid string)
}

func (c *txCopier) writeHeader(fde []byte) error {
	n, err := c.out.Write(Magic)
	c.res.Bytes += int64(n)
	if err != nil {
		return err
	}
	n, err = c.out.Write(fde)
	c.res.Bytes += int64(n)
	return err
}

// add copies one event read by r (with its body).
func (c *txCopier) add(r *Reader, ev *Event) error {
	if err := r.VerifyChecksum(ev); err != nil {
		return &Error{File: r.Name(), Offset: ev.Offset, Err: err}
	}
	body := r.Body(ev)
	if ev.Type == replication.MARIADB_GTID_EVENT || ev.Type == replication.GTID_EVENT {
		g, err := parseGTID(ev.Header, body)
		if err != nil {
			return &Error{File: r.Name(), Offset: ev.Offset, Err: err}
		}
		c.pendGTID = g.String()
	}
	wasIdle := c.tr.idle()
	ended, err := c.tr.step(ev.Header, body)
	if err != nil {
		return &Error{File: r.Name(), Offset: ev.Offset, Err: err}
	}
	if c.pendN == 0 {
		c.pendFile, c.pendOff = r.Name(), ev.Offset
	}
	c.pending.Write(ev.Raw)
	c.pendN++
	switch {
	case ended:
		gtid := c.pendGTID
		c.pendGTID = ""
		if c.onTx != nil {
			c.onTx(gtid)
		}
		if c.skipTx > 0 {
			c.skipTx--
			c.pending.Reset()
			c.pendN = 0
			return nil
		}
		c.res.Transactions++
		if gtid != "" {
			c.res.LastGTID = gtid
		}
		return c.flush(r.Name(), ev.End())
	case wasIdle && c.tr.idle():
		return c.flush(r.Name(), ev.End()) // an event between transactions
	}
	return nil
}

func (c *txCopier) flush(file string, end int64) error {
	n, err := c.out.Write(c.pending.Bytes())
	c.res.Bytes += int64(n)
	if err != nil {
		return err
	}
	c.res.Events += c.pendN
	c.res.EndFile, c.res.EndPos = file, end
	c.pending.Reset()
	c.pendN = 0
	return nil
}

// finish ends the copy; readErr is what ended the input (io.EOF when clean).
func (c *txCopier) finish(readErr error) {
	if c.pendN == 0 && errors.Is(readErr, io.EOF) {
		return
	}
	inc := &Incomplete{File: c.pendFile, Offset: c.pendOff, Bytes: int64(c.pending.Len()), Events: c.pendN}
	if !errors.Is(readErr, io.EOF) {
		inc.Err = readErr
		var e *Error
		if c.pendN == 0 && errors.As(readErr, &e) {
			inc.File, inc.Offset = e.File, e.Offset
		}
	}
	c.res.Incomplete = inc
	c.pending.Reset()
	c.pendN = 0
}

// TransactionGTIDs lists the GTID of every complete transaction of a local
// binlog file (a saved tail or a relay diff), in order; "" stands for a
// transaction without a GTID.
func TransactionGTIDs(file string) ([]string, error) {
	var gtids []string
	c := &txCopier{out: io.Discard, onTx: func(g string) { gtids = append(gtids, g) }}
	if err := copyLocal(c, file); err != nil {
		return nil, fmt.Errorf("list transactions of %s: %w", file, err)
	}
	return gtids, nil
}

// SkipTransactions copies the local binlog file in to out without its
// first n complete transactions (those a resumed run finds already
// applied). The output starts with in's magic number and format
// description event and ends at a transaction boundary.
func SkipTransactions(in string, n int, out string) (CopyResult, error) {
	f, err := secret.Create(out)
	if err != nil {
		return CopyResult{}, fmt.Errorf("skip %d transactions of %s: %w", n, in, err)
	}
	bw := bufio.NewWriter(f)
	c := &txCopier{out: bw, skipTx: n}
	err = copyLocal(c, in)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return c.res, fmt.Errorf("skip %d transactions of %s into %s: %w", n, in, out, err)
	}
	return c.res, nil
}

// copyLocal copies a whole local binlog file through c (header first).
func copyLocal(c *txCopier, file string) error {
	head, err := ReadHead(context.Background(), LocalFS{}, file)
	if err != nil {
		return err
	}
	if err := c.writeHeader(head.FDE); err != nil {
		return err
	}
	r, err := Open(file)
	if err != nil {
		return err
	}
	defer r.Close()
	err = copyEvents(context.Background(), c, r, 0, head)
	c.finish(err)
	if !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
