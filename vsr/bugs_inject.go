//go:build vsrbugs

package vsr

// InjectBugs turns on the given bugs in r; it exists only in builds tagged
// vsrbugs, for the simulator's self-test. A bug that acts when the replica
// starts (BugRecoveringAnswers) must be given through NewWithBugs instead.
func (r *Replica) InjectBugs(b Bug) { r.bugs = b }

// NewWithBugs is New with bugs on from the start.
func NewWithBugs(cfg Config, b Bug) (*Replica, error) {
	if b&BugRecoveringAnswers != 0 && cfg.Recovering {
		cfg.Recovering = false
	}
	r, err := New(cfg)
	if err != nil {
		return nil, err
	}
	r.bugs = b
	return r, nil
}
