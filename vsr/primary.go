package vsr

// primaryState is what only the primary of the current view keeps. It is
// per-view: it is reset whenever the replica becomes primary and dropped when
// it leaves the view, so no vote from one view counts in another.
type primaryState struct {
	// acked[j] is the highest op number backup j has acknowledged in this
	// view. PrepareOK(v, n) means "I hold every op up to n of view v's log"
	// (backups accept Prepares strictly in order), so one number per backup
	// is all the vote state normal operation needs: committing op n commits
	// every op below it, and nothing per op outlives its commit.
	acked []uint64
	// prepared is the highest op number sent to backups in a Prepare.
	prepared uint64
	// resendFrom is prepared as of the last heartbeat: entries up to it
	// that a backup has not acknowledged have waited a whole heartbeat, and
	// the next heartbeat sends them again.
	resendFrom uint64
	// heardAt[j] is the tick at which backup j last answered in this view
	// (checkQuorum).
	heardAt []int
	reads   readState
}

func (p *primaryState) reset(n int, opNumber uint64, now int) {
	*p = primaryState{acked: make([]uint64, n), prepared: opNumber, resendFrom: opNumber, heardAt: make([]int, n)}
	for j := range p.heardAt {
		p.heardAt[j] = now
	}
}

// quorumAcked is the highest op number that f backups have acknowledged:
// with the primary itself that is f+1 replicas, a quorum of the configuration.
// Quorum sizes come from n, never from who is reachable.
func (r *Replica) quorumAcked() uint64 {
	need := r.f
	if r.buggy(BugCommitWithoutQuorum) {
		need--
	}
	if need == 0 {
		return r.opNumber()
	}
	var buf [16]uint64 // on the stack for groups of up to 17
	acks := buf[:0]
	for j, a := range r.primary.acked {
		if j != r.index {
			acks = append(acks, a)
		}
	}
	// The need-th largest acknowledgement.
	for k := 0; k < need; k++ {
		best := k
		for m := k + 1; m < len(acks); m++ {
			if acks[m] > acks[best] {
				best = m
			}
		}
		acks[k], acks[best] = acks[best], acks[k]
	}
	return acks[need-1]
}
