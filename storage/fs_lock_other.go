//go:build !unix

package storage

// Lock is not enforced on this platform.
func (OSFS) Lock(string) (func() error, error) { return func() error { return nil }, nil }
