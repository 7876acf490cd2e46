package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"slices"

	"github.com/vsrgo/vsr/messages"
)

// replayer rebuilds the state from WAL segments, frame by frame, and stops
// at the first damage with the state as of the frame before it: what comes
// after damage cannot be trusted, since it may rest on what was lost.
type replayer struct {
	fs  FS
	dir string
	// skipChecksums is the store's injected defect (Options.skipChecksums).
	skipChecksums bool

	// ckpt is the op of the checkpoint Load returns (0 for none).
	ckpt   uint64
	hs     HardState
	lastOp uint64
	// ents holds the log's ops ckpt+1 through lastOp, all of them: the
	// replay keeps nothing the checkpoint covers.
	ents     []*messages.Entry
	recorded uint64 // the latest checkpoint the WAL records
	seq      uint64
	started  bool

	// segs are the segments replayed whole, with the highest op the log
	// reached in each.
	segs []segment
	// cut is where the last segment's torn tail starts, or -1.
	cut int64
	// damage says what is wrong, and damageAt is the index (in the
	// segments replayed) of the segment it was found in, -1 when it is in
	// none (damage found after the replay).
	damage   string
	damageAt int
}

func newReplayer(fsys FS, dir string, ckpt uint64, skipChecksums bool) *replayer {
	return &replayer{fs: fsys, dir: dir, skipChecksums: skipChecksums, ckpt: ckpt, cut: -1, damageAt: -1}
}

// findReset returns the index of the newest segment that begins with a
// reset base frame, which supersedes every segment before it, or 0.
func (r *replayer) findReset(nums []uint64) (int, error) {
	for i, num := range slices.Backward(nums) {
		f, err := readFirstFrame(r.fs, filepath.Join(r.dir, segName(num)))
		if err != nil {
			return 0, err
		}
		if f != nil && f.kind == kindBase && f.reset {
			return i, nil
		}
	}
	return 0, nil
}

// run replays the segments nums, which must follow each other.
func (r *replayer) run(nums []uint64) error {
	for i, num := range nums {
		if i > 0 && num != nums[i-1]+1 {
			r.fail(i, fmt.Sprintf("segment %s is missing (the WAL goes from %s to %s)",
				segName(nums[i-1]+1), segName(nums[i-1]), segName(num)))
			return nil
		}
		name := filepath.Join(r.dir, segName(num))
		data, err := readWhole(r.fs, name)
		if err != nil {
			return err
		}
		if !r.segment(i, num, name, data, i == len(nums)-1) {
			return nil
		}
	}
	return nil
}

func (r *replayer) fail(at int, what string) { r.damage, r.damageAt = what, at }

// segment replays the frames of the segment num, the i-th replayed, and
// reports whether the replay goes on.
func (r *replayer) segment(i int, num uint64, name string, data []byte, last bool) bool {
	off, idx := 0, 0
	var maxOp uint64
	for {
		payload, next, st := readFrame(data, off)
		if st == frameEOF {
			break
		}
		var f *frame
		if st == frameOK || (st == frameBadCRC && r.skipChecksums) {
			var err error
			if f, err = decodeFrame(payload); err != nil && st == frameOK {
				r.fail(i, fmt.Sprintf("%s at offset %d: a frame whose checksum holds does not decode: %v", name, off, err))
				return false
			}
		}
		if f != nil {
			if msg := r.apply(f, idx); msg != "" {
				r.fail(i, fmt.Sprintf("%s at offset %d: %s", name, off, msg))
				return false
			}
			off, idx, maxOp = next, idx+1, max(maxOp, r.lastOp)
			continue
		}
		if last && torn(data, off, next, st, r.seq) {
			r.cut = int64(off)
			break
		}
		r.fail(i, fmt.Sprintf("%s at offset %d: %s", name, off, describe(data, off, next, st, last)))
		return false
	}
	if idx == 0 {
		if last {
			// A segment whose base frame never became durable: the
			// rotation that made it did not finish, so nothing was
			// appended to it. Settle removes it. (Had the head named
			// it, its base frame would have been durable: Load takes
			// that case for a lost segment.)
			r.cut = 0
			return true
		}
		r.fail(i, fmt.Sprintf("%s holds no frame", name))
		return false
	}
	r.segs = append(r.segs, segment{num: num, maxOp: maxOp})
	return true
}

// torn reports whether the bad frame at off of the last segment is the
// torn write of a Save that never returned:
//   - the file ends inside the frame (its header or payload), and no intact
//     later frame follows (a length field that rotted also runs past the
//     end, but leaves the frames after it intact);
//   - or everything from the frame on is zero (the file grew, but its
//     blocks were never written);
//   - or the frame is complete with a bad checksum, and followed by zeros.
//
// A complete frame with a bad checksum that ends exactly at the end of the
// file is ambiguous: a torn write whose last bytes read back wrong, or a
// synced frame that rotted. It counts as damage: taking it for a tear
// could silently drop an acknowledged write, while damage only makes the
// caller recover from its peers.
func torn(data []byte, off, next int, st frameStatus, seq uint64) bool {
	if rottedLength(data, off) {
		return false
	}
	switch st {
	case frameIncomplete:
		return allZero(data[off:]) || !intactFrameAfter(data, off, seq)
	case frameZero:
		return allZero(data[off:])
	case frameBadCRC:
		return next < len(data) && allZero(data[next:])
	}
	return false
}

// rottedLength reports whether the rest of the file from the frame at off
// is one intact payload under a wrong length: the checksum matches all the
// bytes after the header. A rotted length of the last frame otherwise
// passes for a tear (running past the end, or stopping short of a tail of
// zero bytes the payload happens to end with) and would silently drop a
// synced frame.
func rottedLength(data []byte, off int) bool {
	if len(data)-off <= frameHeaderSize {
		return false
	}
	sum := binary.LittleEndian.Uint32(data[off+4:])
	return crc32.Checksum(data[off+frameHeaderSize:], castagnoli) == sum
}

// describe says what is wrong with a bad frame that is not a torn write.
func describe(data []byte, off, next int, st frameStatus, last bool) string {
	switch {
	case last && rottedLength(data, off):
		return "the last frame's length is corrupt (its checksum matches the rest of the file)"
	case st == frameIncomplete && last:
		return "a frame runs past the end of the file, yet an intact frame follows it: its length is corrupt"
	case st == frameIncomplete:
		return "a frame runs past the end of a segment that is not the last"
	case st == frameZero:
		return "a frame of length zero, not at a torn tail"
	case last && next == len(data):
		return "checksum mismatch in the last frame (a torn write or a synced frame that rotted: " +
			"the two look the same, so it counts as damage)"
	default:
		return "checksum mismatch"
	}
}

// apply applies the frame f, the idx-th of its segment, and returns what is
// wrong with it, if anything; it changes nothing then.
func (r *replayer) apply(f *frame, idx int) string {
	if (idx == 0) != (f.kind == kindBase) {
		if idx == 0 {
			return "the segment does not start with a base frame"
		}
		return "a base frame inside a segment"
	}
	if f.kind == kindBase && f.reset {
		return r.applyReset(f)
	}
	if r.started && f.seq != r.seq+1 {
		return fmt.Sprintf("sequence number %d follows %d: frames are missing", f.seq, r.seq)
	}
	var msg string
	switch f.kind {
	case kindBase:
		msg = r.applyBase(f)
	case kindBatch:
		msg = r.applyBatch(f)
	case kindCheckpoint:
		if f.ckptOp > r.ckpt {
			msg = r.missingCheckpoint(f.ckptOp)
		} else {
			r.recorded = max(r.recorded, f.ckptOp)
		}
	}
	if msg == "" {
		r.seq, r.started = f.seq, true
	}
	return msg
}

func (r *replayer) missingCheckpoint(op uint64) string {
	return fmt.Sprintf("the WAL records checkpoint %d, but no intact checkpoint file at or past it exists (latest intact: %d)", op, r.ckpt)
}

// applyBase checks a segment's base frame against the segments before it;
// for the first segment replayed, whose predecessors compaction deleted, it
// checks that the checkpoint covers the log they held.
func (r *replayer) applyBase(f *frame) string {
	switch {
	case f.ckptOp > r.ckpt:
		return r.missingCheckpoint(f.ckptOp)
	case len(f.entries) > 0:
		return "a base frame that is not a reset carries entries"
	case !r.started && f.lastOp > r.ckpt:
		return fmt.Sprintf("the WAL starts with a segment whose log ends at op %d, but the checkpoint reaches only op %d: earlier segments are missing",
			f.lastOp, r.ckpt)
	case r.started && (f.lastOp != r.lastOp || *f.hs != r.hs):
		return fmt.Sprintf("the base frame (log end %d, %+v) disagrees with the segments before it (log end %d, %+v)",
			f.lastOp, *f.hs, r.lastOp, r.hs)
	}
	if !r.started {
		r.lastOp, r.ents, r.hs = f.lastOp, nil, *f.hs
	}
	r.recorded = max(r.recorded, f.ckptOp)
	return ""
}

// applyReset starts over from a reset base frame, which restates the whole
// state: the hard state and the log after its checkpoint.
func (r *replayer) applyReset(f *frame) string {
	first := f.lastOp - uint64(len(f.entries)) // the op before the first entry
	switch {
	case f.ckptOp > r.ckpt:
		return r.missingCheckpoint(f.ckptOp)
	case uint64(len(f.entries)) > f.lastOp || first > r.ckpt:
		return fmt.Sprintf("the reset frame's log (ops %d to %d) does not reach back to the checkpoint at op %d", first+1, f.lastOp, r.ckpt)
	}
	if msg := checkNumbering(f.entries, first+1); msg != "" {
		return msg
	}
	r.hs, r.lastOp, r.recorded = *f.hs, f.lastOp, f.ckptOp
	r.ents = append(r.ents[:0], f.entries[min(r.ckpt-first, uint64(len(f.entries))):]...)
	r.seq, r.started = f.seq, true
	return ""
}

// applyBatch applies a batch with Batch's semantics, keeping only entries
// the checkpoint does not cover.
func (r *replayer) applyBatch(f *frame) string {
	if f.logFrom == 0 {
		if len(f.entries) > 0 {
			return "a batch with entries but no LogFrom"
		}
	} else {
		k := f.logFrom
		if k > r.lastOp+1 && k-1 > r.ckpt {
			return fmt.Sprintf("a batch starts the log at op %d, past its end (op %d) and the checkpoint (op %d): entries are missing",
				k, r.lastOp, r.ckpt)
		}
		if msg := checkNumbering(f.entries, k); msg != "" {
			return msg
		}
		if k <= r.ckpt+1 {
			r.ents = r.ents[:0]
		} else {
			r.ents = r.ents[:k-r.ckpt-1]
		}
		for _, e := range f.entries {
			if e.OpNumber > r.ckpt {
				r.ents = append(r.ents, e)
			}
		}
		r.lastOp = k - 1 + uint64(len(f.entries))
	}
	if f.hs != nil {
		r.hs = *f.hs
	}
	return ""
}

func checkNumbering(entries []*messages.Entry, from uint64) string {
	for j, e := range entries {
		if e.OpNumber != from+uint64(j) {
			return fmt.Sprintf("entry %d of a frame has op %d, want %d", j, e.OpNumber, from+uint64(j))
		}
	}
	return ""
}

// readFirstFrame returns the first frame of the segment name if it is
// intact, else nil.
func readFirstFrame(fsys FS, name string) (*frame, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("storage: size of %s: %w", name, err)
	}
	var hdr [frameHeaderSize]byte
	if size < frameHeaderSize {
		return nil, nil
	}
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", name, err)
	}
	n := int64(binary.LittleEndian.Uint32(hdr[:]))
	if n == 0 || n > size-frameHeaderSize {
		return nil, nil
	}
	payload := make([]byte, n)
	if _, err := f.ReadAt(payload, frameHeaderSize); err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", name, err)
	}
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
		return nil, nil
	}
	fr, err := decodeFrame(payload)
	if err != nil {
		return nil, nil
	}
	return fr, nil
}
