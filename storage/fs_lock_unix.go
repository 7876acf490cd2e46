//go:build unix

package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Lock takes an flock on dir/vsr.lock. The kernel releases it when the
// process ends, however it ends, so a node killed with kill -9 leaves no
// stale lock behind.
func (OSFS) Lock(dir string) (func() error, error) {
	name := filepath.Join(dir, lockName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if err == syscall.EWOULDBLOCK {
			return nil, fmt.Errorf("%w: %s is locked by another process", ErrLocked, dir)
		}
		return nil, fmt.Errorf("storage: lock %s: %w", name, err)
	}
	return f.Close, nil
}
