package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
)

// The head file, vsr.head, names the newest WAL segment:
//
//	magic "vsr-head", u64 segment number, u32 CRC-32C of all before it
//
// little endian. It exists because the segments alone cannot show that the
// newest of them went missing: sequence and segment numbers reveal a gap
// between two segments, and a base frame reveals a lost predecessor, but
// nothing follows the newest segment to notice its absence. Without the
// head, a store whose only segment is lost loads as a new, empty store, and
// one whose newest segment is lost silently loads an older state; either
// way the replica would break the promises it made from what was lost.
//
// The rule that makes it work: the head is rewritten (temporary file, sync,
// rename, sync of the directory) only after the segment it names is
// durable, content and name alike. So at every moment the head names a
// segment no newer than the newest one on disk, unless a file was lost:
//   - a missing or corrupt head in an initialised directory (one with a
//     meta file, which initialisation writes only after the head), or a
//     newest segment holding a frame that is older than the head's, is
//     damage;
//   - a newest segment newer than the head's is a crash between making
//     that segment durable and rewriting the head, and is fine: the next
//     Load brings the head up to it.
//
// The head is rewritten whenever a new newest segment is made: at
// initialisation (the first segment), at rotation, and by the repair of a
// damaged Load (the reset segment).

const (
	headMagic = "vsr-head"
	headSize  = 8 + 8 + 4
	// firstSegment is the number of the segment initialisation writes.
	firstSegment = 1
)

func encodeHead(num uint64) []byte {
	b := make([]byte, 0, headSize)
	b = append(b, headMagic...)
	b = binary.LittleEndian.AppendUint64(b, num)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// writeHead durably makes num the head's segment. The caller has made that
// segment durable first.
func writeHead(fsys FS, dir string, num uint64) error {
	return replaceFile(fsys, dir, headName, encodeHead(num))
}

// readHead returns the segment number the head of dir names. A head that
// is missing or corrupt gives a description of what is wrong in bad, for
// the Damage report; an I/O error is returned as err.
func readHead(fsys FS, dir string) (num uint64, bad string, err error) {
	name := filepath.Join(dir, headName)
	b, err := readWhole(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Sprintf("the head file %s is missing, so a loss of the newest WAL segment cannot be ruled out", name), nil
	}
	if err != nil {
		return 0, "", err
	}
	if len(b) != headSize || string(b[:8]) != headMagic ||
		crc32.Checksum(b[:headSize-4], castagnoli) != binary.LittleEndian.Uint32(b[headSize-4:]) {
		return 0, fmt.Sprintf("the head file %s is corrupt (bad length, magic or checksum), so a loss of the newest WAL segment cannot be ruled out", name), nil
	}
	return binary.LittleEndian.Uint64(b[8:]), "", nil
}

// checkHead returns what is wrong when the newest segment holding a frame,
// newest (0 for none), is older than the one the head names.
func checkHead(dir string, head, newest uint64) string {
	if newest >= head {
		return ""
	}
	left := "no segment holding a frame is left"
	if newest > 0 {
		left = fmt.Sprintf("the newest segment holding a frame is %s", segName(newest))
	}
	return fmt.Sprintf("WAL segment %s is missing: the head file names it as the newest segment, but %s in %s",
		segName(head), left, dir)
}
