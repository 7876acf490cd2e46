package vsr

// SuspectDown tells the replica that replica i is known to be down: a hint
// from outside the protocol, such as the transport losing its connection to
// i's node. If i is the primary of the view in which this backup is normal,
// the backup probes for a view change now (liveness.go) instead of after the
// inactivity timeout. Hints never decide safety: a wrong one costs a view change, like
// an early timeout, and nothing else.
func (r *Replica) SuspectDown(i int) Output {
	if r.status == StatusNormal && !r.isPrimary() && i == r.primaryOf(r.viewNumber) {
		r.suspectPrimary()
		r.flush()
	}
	return r.takeOutput()
}
