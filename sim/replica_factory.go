package sim

import (
	"errors"

	"github.com/vsrgo/vsr/vsr"
)

// ErrBugsNeedTag is returned when a run asks for injected bugs in a build
// without the vsrbugs tag.
var ErrBugsNeedTag = errors.New("sim: injecting bugs needs a build with -tags vsrbugs")

// newReplica makes a replica; builds tagged vsrbugs replace it with one that
// can inject bugs.
var newReplica = func(cfg vsr.Config, bugs vsr.Bug) (*vsr.Replica, error) {
	if bugs != 0 {
		return nil, ErrBugsNeedTag
	}
	return vsr.New(cfg)
}

// newReplicaHasBugs is true in builds tagged vsrbugs.
var newReplicaHasBugs = false

// injectBugs turns bugs on in a replica made by vsr.Restart; builds tagged
// vsrbugs replace it.
var injectBugs = func(*vsr.Replica, vsr.Bug) {}
