package storage

import "sync/atomic"

// skipChecksums, when set, makes Load take frames whose checksum fails for
// intact ones (decoding what it can): a defect for the simulator's
// self-test, which must show that its checks catch a store that trusts
// corrupt data. A normal build cannot set it: the only setter,
// InjectSkipChecksums, exists under the vsrbugs build tag.
var skipChecksums atomic.Bool
