package cases

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Journal is an append-only local file of records that must not be lost
// while the store is away. Each record is framed as
//
//	4 bytes big-endian payload length | 4 bytes CRC-32C of the payload | payload
//
// Append returns once the record is on disk (fsync; concurrent appends share
// one fsync: group commit). A torn tail — a record cut short by kill -9 or a
// power loss, or one whose CRC does not match — is detected when the journal
// is opened, reported by TornBytes and cut off; the records before it stand.
//
// Beside the journal, a small ".pos" file keeps how far a replayer got
// (Checkpoint); losing it only means records are replayed again, which the
// store's idempotent writes absorb.
type Journal struct {
	path string

	mu     sync.Mutex // guards f's size, synced, gen, checkpoint, closed
	f      *os.File
	size   int64 // bytes written
	synced int64 // bytes known to be on disk
	gen    int64 // bumped by Reset
	cp     int64 // replay checkpoint
	closed bool
	torn   int64
	syncMu sync.Mutex // one fsync at a time; waiting appenders ride along
}

const (
	journalHeader = 8
	maxRecord     = 16 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// OpenJournal opens or creates the journal at path (its directory is made
// 0700, the file 0600: records hold personal data, sealed by Durable).
func OpenJournal(path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cases: journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cases: journal: %w", err)
	}
	// One process per journal: a second hotlined on the same data
	// directory would interleave records and replay them twice.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("cases: journal %s is in use by another process: %w", path, err)
	}
	j := &Journal{path: path, f: f}
	bounds, end, err := j.scan()
	if err != nil {
		f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cases: journal: %w", err)
	}
	if st.Size() > end {
		j.torn = st.Size() - end
		if err := f.Truncate(end); err != nil {
			f.Close()
			return nil, fmt.Errorf("cases: journal: cut torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("cases: journal: %w", err)
		}
	}
	j.size, j.synced = end, end
	if b, err := os.ReadFile(path + ".pos"); err == nil {
		if cp, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && bounds[cp] {
			j.cp = cp
		}
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // the file's directory entry, for a journal just created
		d.Close()
	}
	return j, nil
}

// scan walks the records from the start and returns the record boundaries
// and the end of the last whole, valid record.
func (j *Journal) scan() (map[int64]bool, int64, error) {
	bounds := map[int64]bool{0: true}
	var off int64
	hdr := make([]byte, journalHeader)
	for {
		if _, err := j.f.ReadAt(hdr, off); err != nil {
			if errors.Is(err, io.EOF) {
				return bounds, off, nil
			}
			return nil, 0, fmt.Errorf("cases: journal: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr)
		if n == 0 || n > maxRecord {
			return bounds, off, nil
		}
		p := make([]byte, n)
		if _, err := j.f.ReadAt(p, off+journalHeader); err != nil {
			if errors.Is(err, io.EOF) {
				return bounds, off, nil
			}
			return nil, 0, fmt.Errorf("cases: journal: %w", err)
		}
		if crc32.Checksum(p, crcTable) != binary.BigEndian.Uint32(hdr[4:]) {
			return bounds, off, nil
		}
		off += journalHeader + int64(n)
		bounds[off] = true
	}
}

// TornBytes reports how many bytes of a torn tail OpenJournal cut off.
func (j *Journal) TornBytes() int64 { return j.torn }

// Append writes one record and returns when it is on disk.
func (j *Journal) Append(payload []byte) error {
	if len(payload) == 0 || len(payload) > maxRecord {
		return fmt.Errorf("cases: journal: record of %d bytes", len(payload))
	}
	buf := make([]byte, journalHeader+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[4:], crc32.Checksum(payload, crcTable))
	copy(buf[journalHeader:], payload)

	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return errors.New("cases: journal closed")
	}
	if _, err := j.f.WriteAt(buf, j.size); err != nil {
		j.f.Truncate(j.size) // drop a partial write; the scan would cut it anyway
		j.mu.Unlock()
		return fmt.Errorf("cases: journal write: %w", err)
	}
	j.size += int64(len(buf))
	end, gen := j.size, j.gen
	j.mu.Unlock()

	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	if j.gen != gen || j.synced >= end {
		j.mu.Unlock()
		return nil // an fsync by another appender covered this record
	}
	target := j.size
	j.mu.Unlock()
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("cases: journal sync: %w", err)
	}
	j.mu.Lock()
	if j.gen == gen && target > j.synced {
		j.synced = target
	}
	j.mu.Unlock()
	return nil
}

// Size returns the bytes of records on disk.
func (j *Journal) Size() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.synced
}

// Checkpoint returns the offset replay has reached.
func (j *Journal) Checkpoint() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cp
}

// SetCheckpoint records that every record before off was replayed. It is
// not fsync'd: a lost checkpoint only repeats idempotent replays.
func (j *Journal) SetCheckpoint(off int64) error {
	j.mu.Lock()
	j.cp = off
	j.mu.Unlock()
	return j.writePos(off, false)
}

func (j *Journal) writePos(off int64, sync bool) error {
	tmp := j.path + ".pos.tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cases: journal checkpoint: %w", err)
	}
	_, err = f.WriteString(strconv.FormatInt(off, 10) + "\n")
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, j.path+".pos")
	}
	if err != nil {
		return fmt.Errorf("cases: journal checkpoint: %w", err)
	}
	return nil
}

// ReadFrom calls fn for each record on disk from offset off, in order, with
// the offset just after the record. It stops at the first error of fn.
func (j *Journal) ReadFrom(off int64, fn func(payload []byte, next int64) error) error {
	end := j.Size()
	hdr := make([]byte, journalHeader)
	for off < end {
		if _, err := j.f.ReadAt(hdr, off); err != nil {
			return fmt.Errorf("cases: journal read at %d: %w", off, err)
		}
		n := int64(binary.BigEndian.Uint32(hdr))
		if n == 0 || n > maxRecord || off+journalHeader+n > end {
			return fmt.Errorf("cases: journal read at %d: bad record length %d", off, n)
		}
		p := make([]byte, n)
		if _, err := j.f.ReadAt(p, off+journalHeader); err != nil {
			return fmt.Errorf("cases: journal read at %d: %w", off, err)
		}
		if crc32.Checksum(p, crcTable) != binary.BigEndian.Uint32(hdr[4:]) {
			return fmt.Errorf("cases: journal read at %d: CRC mismatch", off)
		}
		off += journalHeader + n
		if err := fn(p, off); err != nil {
			return err
		}
	}
	return nil
}

// ResetIfReplayed empties the journal when every record on disk was
// replayed (the checkpoint is at the end) and reports whether it did. The
// caller makes sure no Append runs meanwhile. The checkpoint goes to 0 on
// disk before the file is cut, so a crash in between replays again rather
// than skipping records appended later.
func (j *Journal) ResetIfReplayed() (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cp != j.synced || j.size != j.synced {
		return false, nil
	}
	if j.size == 0 {
		return true, nil
	}
	if err := j.writePos(0, true); err != nil {
		return false, err
	}
	if err := j.f.Truncate(0); err != nil {
		return false, fmt.Errorf("cases: journal reset: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return false, fmt.Errorf("cases: journal reset: %w", err)
	}
	j.size, j.synced, j.cp = 0, 0, 0
	j.gen++
	return true, nil
}

// Close closes the journal file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	return j.f.Close()
}
