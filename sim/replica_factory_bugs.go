//go:build vsrbugs

package sim

import (
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

func init() {
	newReplica = vsr.NewWithBugs
	newReplicaHasBugs = true
	storeOptions = func(bugs vsr.Bug) storage.Options {
		if bugs&vsr.BugUseCorruptRecord != 0 {
			return storage.WithSkippedChecksums(simStoreOptions)
		}
		return simStoreOptions
	}
}
