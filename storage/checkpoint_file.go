package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
)

// A checkpoint file, checkpoint-<16 hex digits of its op>.ckpt, is
//
//	magic "vsr-ckpt", u64 op, u64 len(Head), u64 len(State),
//	u32 CRC-32C of everything before it and of Head and State,
//	Head, State
//
// little endian. It is written under a temporary name, synced and renamed,
// so that the name exists only for a complete, synced file; the checksum
// catches what rots later.

const (
	ckptMagic      = "vsr-ckpt"
	ckptHeaderSize = 8 + 8 + 8 + 8 + 4
)

// ckptHeader returns the header of cp.
func ckptHeader(cp *Checkpoint) []byte {
	h := make([]byte, 0, ckptHeaderSize)
	h = append(h, ckptMagic...)
	h = binary.LittleEndian.AppendUint64(h, cp.OpNumber)
	h = binary.LittleEndian.AppendUint64(h, uint64(len(cp.Head)))
	h = binary.LittleEndian.AppendUint64(h, uint64(len(cp.State)))
	sum := crc32.Checksum(h, castagnoli)
	sum = crc32.Update(sum, castagnoli, cp.Head)
	sum = crc32.Update(sum, castagnoli, cp.State)
	return binary.LittleEndian.AppendUint32(h, sum)
}

// writeCheckpointFile makes cp durable under its name in dir: temporary
// file, sync, rename, sync of the directory. Head and State are written as
// they are, never copied.
func writeCheckpointFile(fsys FS, dir string, cp *Checkpoint) (err error) {
	final := filepath.Join(dir, ckptName(cp.OpNumber))
	tmp := final + tmpSuffix
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("storage: create %s: %w", tmp, err)
	}
	for _, part := range [][]byte{ckptHeader(cp), cp.Head, cp.State} {
		if _, err = f.Write(part); err != nil {
			f.Close()
			return fmt.Errorf("storage: write %s: %w", tmp, err)
		}
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("storage: sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", tmp, err)
	}
	if err = fsys.Rename(tmp, final); err != nil {
		return fmt.Errorf("storage: rename %s: %w", tmp, err)
	}
	if err = fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("storage: sync directory %s: %w", dir, err)
	}
	return nil
}

// readCheckpointFile reads and verifies the checkpoint file of op. An I/O
// error is returned as err; a file that is not intact gives a description
// of what is wrong in bad, for the Damage report.
func readCheckpointFile(fsys FS, dir string, op uint64) (cp *Checkpoint, bad string, err error) {
	name := filepath.Join(dir, ckptName(op))
	data, err := readWhole(fsys, name)
	if err != nil {
		return nil, "", err
	}
	if len(data) < ckptHeaderSize || string(data[:8]) != ckptMagic {
		return nil, fmt.Sprintf("checkpoint file %s: bad header", name), nil
	}
	hop := binary.LittleEndian.Uint64(data[8:])
	headLen := binary.LittleEndian.Uint64(data[16:])
	stateLen := binary.LittleEndian.Uint64(data[24:])
	sum := binary.LittleEndian.Uint32(data[32:])
	body := uint64(len(data) - ckptHeaderSize)
	if hop != op || headLen > body || stateLen != body-headLen {
		return nil, fmt.Sprintf("checkpoint file %s: header (op %d, %d+%d bytes) does not match the file (op %d, %d bytes)",
			name, hop, headLen, stateLen, op, body), nil
	}
	got := crc32.Update(crc32.Checksum(data[:32], castagnoli), castagnoli, data[ckptHeaderSize:])
	if got != sum {
		return nil, fmt.Sprintf("checkpoint file %s: checksum mismatch", name), nil
	}
	head := data[ckptHeaderSize : ckptHeaderSize+headLen]
	return &Checkpoint{OpNumber: op, Head: head[:len(head):len(head)], State: data[ckptHeaderSize+headLen:]}, "", nil
}

// readWhole returns the content of name.
func readWhole(fsys FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("storage: size of %s: %w", name, err)
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && !(err == io.EOF && size == 0) {
		return nil, fmt.Errorf("storage: read %s: %w", name, err)
	}
	return data, nil
}
