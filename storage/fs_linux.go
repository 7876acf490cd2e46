//go:build linux

package storage

import "syscall"

// Sync makes the file's content durable with fdatasync: like fsync, it
// flushes the data and whatever metadata reading it back needs (a grown
// file's size among them), but not timestamps, which saves the journal a
// commit on every append.
func (f osFile) Sync() error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
