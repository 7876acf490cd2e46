//go:build vsrbugs

package sim

import (
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

func init() {
	newReplica = vsr.NewWithBugs
	injectBugs = func(r *vsr.Replica, b vsr.Bug) { r.InjectBugs(b) }
	newReplicaHasBugs = true
	storeOptions = func(bugs vsr.Bug) storage.Options {
		if bugs&vsr.BugUseCorruptRecord != 0 {
			return storage.WithSkippedChecksums(simStoreOptions)
		}
		return simStoreOptions
	}
}
