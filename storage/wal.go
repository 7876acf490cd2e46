package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// The write-ahead log is a sequence of segment files, wal-<16 hex digits>.log,
// numbered without gaps. A segment is a sequence of frames:
//
//	[u32 payload length, little endian][u32 CRC-32C of the payload][payload]
//
// and a payload is a kind byte, the frame's sequence number (a uvarint, one
// more than the previous frame's, across segments, so that a lost frame or
// segment shows as a gap), then the kind's fields, all uvarints unless
// said otherwise:
//
//	kindBatch:      LogFrom, flags (bit 0: a hard state follows), [hard
//	                state], entry count, entries (each a uvarint length and
//	                the entry's protobuf encoding)
//	kindCheckpoint: the op number of a checkpoint file made durable
//	kindBase:       flags (bit 0: reset), hard state, latest recorded
//	                checkpoint op, last op of the log, entry count, entries
//
// A hard state is View, LastNormalView, CommitNumber and a flags byte (bit
// 0: recovering; bit 1: Epoch follows, as a uvarint, which is left out while
// it is zero, so that stores written before epochs existed read the same).
//
// Every segment starts with a base frame, which restates what earlier
// segments established (hard state, end of the log, latest checkpoint), so
// that compaction may delete earlier segments without losing them. A reset
// base also carries the log's entries after the checkpoint: Load writes one
// after it finds damage, and it supersedes every earlier segment.
//
// The head file (head.go) names the newest segment, so that Load can tell
// when the newest one, which no later segment follows to show the gap, is
// lost.

const (
	frameHeaderSize = 8

	kindBatch      = 1
	kindCheckpoint = 2
	kindBase       = 3

	flagHardState = 1
	flagReset     = 1

	// maxFramePayload keeps a payload's length within its u32 field.
	maxFramePayload = 1<<32 - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frame is a decoded payload.
type frame struct {
	kind byte
	seq  uint64
	// kindBatch: logFrom, hs (nil when absent), entries.
	logFrom uint64
	hs      *HardState
	entries []*messages.Entry
	// kindCheckpoint and kindBase: the checkpoint op.
	ckptOp uint64
	// kindBase: reset, lastOp, hs, entries (the log's last len(entries) ops).
	reset  bool
	lastOp uint64
}

// beginFrame reserves a frame header at the end of buf; endFrame fills it
// in once the payload, everything after start, is appended.
func beginFrame(buf []byte) (out []byte, start int) {
	start = len(buf)
	return append(buf, make([]byte, frameHeaderSize)...), start
}

func endFrame(buf []byte, start int) ([]byte, error) {
	payload := buf[start+frameHeaderSize:]
	if len(payload) > maxFramePayload {
		return nil, fmt.Errorf("storage: a frame of %d bytes is past the limit of %d", len(payload), maxFramePayload)
	}
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, castagnoli))
	return buf, nil
}

func appendHardState(buf []byte, hs HardState) []byte {
	buf = binary.AppendUvarint(buf, hs.View)
	buf = binary.AppendUvarint(buf, hs.LastNormalView)
	buf = binary.AppendUvarint(buf, hs.CommitNumber)
	var flags byte
	if hs.Recovering {
		flags |= hardStateRecovering
	}
	if hs.Epoch != 0 {
		flags |= hardStateEpoch
	}
	buf = append(buf, flags)
	if hs.Epoch != 0 {
		buf = binary.AppendUvarint(buf, hs.Epoch)
	}
	return buf
}

// The flags of an encoded hard state.
const (
	hardStateRecovering = 1
	hardStateEpoch      = 2
)

// appendEntries encodes each entry straight into buf, with no buffer of
// its own.
func appendEntries(buf []byte, entries []*messages.Entry) ([]byte, error) {
	buf = binary.AppendUvarint(buf, uint64(len(entries)))
	opts := proto.MarshalOptions{}
	for _, e := range entries {
		buf = binary.AppendUvarint(buf, uint64(opts.Size(e)))
		var err error
		if buf, err = opts.MarshalAppend(buf, e); err != nil {
			return nil, fmt.Errorf("storage: encode entry %d: %w", e.GetOpNumber(), err)
		}
	}
	return buf, nil
}

// appendBatchFrame appends b as one frame.
func appendBatchFrame(buf []byte, seq uint64, b *Batch) ([]byte, error) {
	buf, start := beginFrame(buf)
	buf = append(buf, kindBatch)
	buf = binary.AppendUvarint(buf, seq)
	buf = binary.AppendUvarint(buf, b.LogFrom)
	if b.HardState != nil {
		buf = append(buf, flagHardState)
		buf = appendHardState(buf, *b.HardState)
	} else {
		buf = append(buf, 0)
	}
	buf, err := appendEntries(buf, b.Entries)
	if err != nil {
		return nil, err
	}
	return endFrame(buf, start)
}

// appendCheckpointFrame appends the record that checkpoint op is durable.
func appendCheckpointFrame(buf []byte, seq, op uint64) []byte {
	buf, start := beginFrame(buf)
	buf = append(buf, kindCheckpoint)
	buf = binary.AppendUvarint(buf, seq)
	buf = binary.AppendUvarint(buf, op)
	buf, _ = endFrame(buf, start) // a few bytes: never past the limit
	return buf
}

// appendBaseFrame appends a segment's first frame. entries, when given,
// are the log's last ops up to lastOp.
func appendBaseFrame(buf []byte, seq uint64, reset bool, hs HardState, ckptOp, lastOp uint64, entries []*messages.Entry) ([]byte, error) {
	buf, start := beginFrame(buf)
	buf = append(buf, kindBase)
	buf = binary.AppendUvarint(buf, seq)
	if reset {
		buf = append(buf, flagReset)
	} else {
		buf = append(buf, 0)
	}
	buf = appendHardState(buf, hs)
	buf = binary.AppendUvarint(buf, ckptOp)
	buf = binary.AppendUvarint(buf, lastOp)
	buf, err := appendEntries(buf, entries)
	if err != nil {
		return nil, err
	}
	return endFrame(buf, start)
}

// decoder reads a payload's fields; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

var errShortPayload = errors.New("payload ends early")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortPayload
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errShortPayload
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) hardState() *HardState {
	hs := &HardState{View: d.uvarint(), LastNormalView: d.uvarint(), CommitNumber: d.uvarint()}
	flags := d.byte()
	if flags&^(hardStateRecovering|hardStateEpoch) != 0 && d.err == nil {
		d.err = fmt.Errorf("storage: unknown hard state flags %#x", flags)
	}
	hs.Recovering = flags&hardStateRecovering != 0
	if flags&hardStateEpoch != 0 {
		hs.Epoch = d.uvarint()
	}
	return hs
}

func (d *decoder) entries() []*messages.Entry {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errShortPayload
		return nil
	}
	entries := make([]*messages.Entry, 0, n)
	for range n {
		size := d.uvarint()
		if d.err != nil || size > uint64(len(d.b)) {
			d.err = errShortPayload
			return nil
		}
		e := &messages.Entry{}
		if err := proto.Unmarshal(d.b[:size], e); err != nil {
			d.err = err
			return nil
		}
		d.b = d.b[size:]
		entries = append(entries, e)
	}
	return entries
}

// decodeFrame decodes a payload whose checksum was verified.
func decodeFrame(payload []byte) (*frame, error) {
	d := &decoder{b: payload}
	f := &frame{kind: d.byte(), seq: d.uvarint()}
	switch f.kind {
	case kindBatch:
		f.logFrom = d.uvarint()
		if d.byte()&flagHardState != 0 {
			f.hs = d.hardState()
		}
		f.entries = d.entries()
	case kindCheckpoint:
		f.ckptOp = d.uvarint()
	case kindBase:
		f.reset = d.byte()&flagReset != 0
		f.hs = d.hardState()
		f.ckptOp = d.uvarint()
		f.lastOp = d.uvarint()
		f.entries = d.entries()
	default:
		if d.err == nil {
			d.err = fmt.Errorf("unknown frame kind %d", f.kind)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes after the payload", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return f, nil
}

// frameStatus classifies what lies at an offset of a segment.
type frameStatus int

const (
	frameOK         frameStatus = iota
	frameEOF                    // the segment ends here, cleanly
	frameIncomplete             // the segment ends inside the header or payload
	frameBadCRC                 // a complete frame whose checksum fails
	frameZero                   // a zero length: no frame is empty
)

// readFrame looks at the frame at data[off:]. It returns the payload and
// the offset after the frame (for frameOK and frameBadCRC).
func readFrame(data []byte, off int) (payload []byte, next int, st frameStatus) {
	rest := len(data) - off
	switch {
	case rest == 0:
		return nil, off, frameEOF
	case rest < frameHeaderSize:
		return nil, off, frameIncomplete
	}
	n := binary.LittleEndian.Uint32(data[off:])
	sum := binary.LittleEndian.Uint32(data[off+4:])
	if n == 0 {
		return nil, off, frameZero
	}
	if uint64(n) > uint64(rest-frameHeaderSize) {
		return nil, off, frameIncomplete
	}
	next = off + frameHeaderSize + int(n)
	payload = data[off+frameHeaderSize : next]
	if crc32.Checksum(payload, castagnoli) != sum {
		return payload, next, frameBadCRC
	}
	return payload, next, frameOK
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// intactFrameAfter reports whether an intact frame with a sequence number
// past seq starts anywhere in data after off. A frame whose length runs
// past the end of the last segment looks torn, but a flipped bit in the
// length of a synced frame looks the same; an intact later frame tells the
// two apart, so that a rotted length never silently drops synced frames.
// The sequence number must also be one the rest of the file could reach
// (each frame takes at least minFrame bytes), which keeps random bytes from
// passing the cheap tests and costing a checksum each.
func intactFrameAfter(data []byte, off int, seq uint64) bool {
	const minFrame = frameHeaderSize + 2
	maxSeq := seq + uint64(len(data)-off)/minFrame + 1
	for p := off + 1; p+frameHeaderSize < len(data); p++ {
		n := int(binary.LittleEndian.Uint32(data[p:]))
		end := p + frameHeaderSize + n
		if n < 2 || end > len(data) {
			continue
		}
		payload := data[p+frameHeaderSize : end]
		if k := payload[0]; k != kindBatch && k != kindCheckpoint && k != kindBase {
			continue
		}
		if s, m := binary.Uvarint(payload[1:]); m <= 0 || s <= seq || s > maxSeq {
			continue
		}
		if crc32.Checksum(payload, castagnoli) == binary.LittleEndian.Uint32(data[p+4:]) {
			return true
		}
	}
	return false
}

// File names.

const (
	metaName      = "vsr.meta"
	headName      = "vsr.head"
	segPrefix     = "wal-"
	segSuffix     = ".log"
	ckptPrefix    = "checkpoint-"
	ckptSuffix    = ".ckpt"
	tmpSuffix     = ".tmp"
	damagedSuffix = ".damaged"
)

func segName(n uint64) string   { return fmt.Sprintf("%s%016x%s", segPrefix, n, segSuffix) }
func ckptName(op uint64) string { return fmt.Sprintf("%s%016x%s", ckptPrefix, op, ckptSuffix) }

// parseName returns the number in a name made by segName or ckptName.
func parseName(name, prefix, suffix string) (uint64, bool) {
	hex, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	if hex, ok = strings.CutSuffix(hex, suffix); !ok || len(hex) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 64)
	return n, err == nil
}

// ours reports whether name is a file FileStore makes.
func ours(name string) bool {
	base := strings.TrimSuffix(strings.TrimSuffix(name, tmpSuffix), damagedSuffix)
	if base == metaName || base == headName || base == lockName {
		return true
	}
	_, seg := parseName(base, segPrefix, segSuffix)
	_, ckpt := parseName(base, ckptPrefix, ckptSuffix)
	return seg || ckpt
}
