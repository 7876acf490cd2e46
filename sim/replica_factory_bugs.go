//go:build vsrbugs

package sim

import "github.com/vsrgo/vsr/vsr"

func init() {
	newReplica = vsr.NewWithBugs
	newReplicaHasBugs = true
}
