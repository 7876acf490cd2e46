//go:build vsrbugs

package storage

// InjectSkipChecksums turns on (or off) the defect that makes Load accept
// frames whose checksum fails. It exists only in builds tagged vsrbugs, for
// the simulator's self-test, and acts on every FileStore in the process.
func InjectSkipChecksums(on bool) { skipChecksums.Store(on) }
