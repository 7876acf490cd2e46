//go:build vsrbugs

package storage

// WithSkippedChecksums returns o with the defect that makes Load accept
// frames whose checksum fails. It exists only in builds tagged vsrbugs, for
// the simulator's self-test, and acts only on the store opened with the
// returned Options: other stores in the process keep checking.
func WithSkippedChecksums(o Options) Options {
	o.skipChecksums = true
	return o
}
