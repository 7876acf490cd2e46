package vsr

// The checks FuzzStep runs on its cluster, its seed programs, and a test that
// the seeds still reach the states they were written for.

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// agree checks e, committed by untainted replica i, against what every other
// untainted replica committed at its op number.
func (c *fzCluster) agree(i int, e *messages.Entry, how string) {
	if e == nil {
		c.t.Fatalf("command %d: replica %d %s a nil entry", c.cmd, i, how)
	}
	prev, ok := c.committed[e.OpNumber]
	if !ok {
		c.committed[e.OpNumber] = e
		return
	}
	if prev != e && !proto.Equal(prev, e) {
		c.t.Fatalf("command %d: replica %d (%s) %s {%v} at op %d, another replica committed {%v}",
			c.cmd, i, fzState(c.replicas[i]), how, e, e.OpNumber, prev)
	}
}

// check runs after every command: every replica's invariants, and the
// agreement of the committed prefixes of untainted replicas.
func (c *fzCluster) check() {
	for i := range c.replicas {
		c.checkReplica(i)
	}
}

func (c *fzCluster) checkReplica(i int) {
	r := c.replicas[i]
	if err := r.CheckInvariants(); err != nil {
		c.t.Fatalf("command %d: replica %d (%s): %v", c.cmd, i, fzState(r), err)
	}
	if c.tainted[i] {
		return
	}
	for op := r.logBase + 1; op <= r.commitNumber; op++ {
		c.agree(i, r.entryAt(op), "holds as committed")
	}
	c.hint(i)
}

// checkStates runs at the end: untainted replicas with the same commit number
// hold the same state and the same client table, however they got there
// (executing, fetching entries, installing a checkpoint).
func (c *fzCluster) checkStates() {
	type held struct {
		replica int
		state   []byte
		table   []*messages.ClientSession
	}
	byCommit := map[uint64]held{}
	for i, r := range c.replicas {
		if c.tainted[i] || r.status == StatusRecovering && r.commitNumber == 0 {
			continue
		}
		state, err := c.stores[i].Snapshot()
		if err != nil {
			c.t.Fatal(err)
		}
		h := held{replica: i, state: state, table: r.clientTable.rows()}
		prev, ok := byCommit[r.commitNumber]
		if !ok {
			byCommit[r.commitNumber] = h
			continue
		}
		if !bytes.Equal(prev.state, h.state) {
			c.t.Fatalf("replicas %d and %d have committed up to op %d but hold different states",
				prev.replica, i, r.commitNumber)
		}
		if len(prev.table) != len(h.table) {
			c.t.Fatalf("replicas %d and %d have committed up to op %d but hold %d and %d sessions",
				prev.replica, i, r.commitNumber, len(prev.table), len(h.table))
		}
		for k := range h.table {
			if !proto.Equal(prev.table[k], h.table[k]) {
				c.t.Fatalf("replicas %d and %d have committed up to op %d but their client tables differ: %v, %v",
					prev.replica, i, r.commitNumber, prev.table[k], h.table[k])
			}
		}
	}
}

// fzHints counts the states hint has seen; its only purpose is to give the
// branches of hint something to do.
var fzHints [24]int

// hint runs a branch for each interesting state of an untainted replica. Go's
// fuzzer is guided by coverage, and coverage alone cannot tell a state
// reached with correct traffic, where the agreement check applies, from one
// reached with forged traffic: these branches can, so inputs that reach
// them with correct traffic are kept and mutated further.
func (c *fzCluster) hint(i int) {
	r := c.replicas[i]
	switch {
	case r.commitNumber == 0:
	case r.viewNumber == 0:
		fzHints[0]++
	case r.status == StatusNormal && r.isPrimary():
		fzHints[1]++
		if r.opNumber() > r.commitNumber {
			fzHints[2]++ // a new primary with uncommitted entries
		}
	case r.status == StatusNormal:
		fzHints[3]++
		if r.viewNumber > 1 {
			fzHints[4]++
		}
	case r.syncing:
		fzHints[5]++
	default:
		fzHints[6]++ // changing views with committed ops
	}
	if c.restarted[i] {
		switch r.status {
		case StatusRecovering:
			fzHints[7]++
		case StatusNormal:
			fzHints[8]++
			if r.commitNumber > 0 {
				fzHints[9]++ // recovered, and has committed ops
			}
		default:
			fzHints[10]++
		}
	}
	if r.commitNumber >= 3 && r.viewNumber > 0 {
		fzHints[11]++
		if r.commitNumber >= 8 {
			fzHints[12]++
		}
	}
	switch {
	case r.logBase > 0:
		fzHints[13]++ // the log was trimmed
		if r.viewNumber > 0 {
			fzHints[14]++
		}
	case r.checkpoint != nil:
		fzHints[15]++
	}
	if r.fetch.active {
		fzHints[16]++
		if r.fetch.next > 0 {
			fzHints[17]++ // a checkpoint transfer half done
		}
	}
	if r.catchUp.active {
		fzHints[18]++
		if r.status == StatusRecovering {
			fzHints[19]++
		}
	}
	if r.checkpointsInstalled > 0 {
		fzHints[20]++
		if c.restarted[i] {
			fzHints[21]++ // recovered through a checkpoint
		}
	}
	if r.clientTable.len() == r.cfg.MaxSessions {
		fzHints[22]++
	}
}

// fzSeed is a FuzzStep program written for a purpose.
type fzSeed struct {
	name    string
	program []byte
}

func fzStepSeeds() []fzSeed {
	put := func(i, client byte) []byte { return []byte{fzRequest, i, client, 0, client << 3} }
	big := func(i, client byte) []byte { return []byte{fzRequest, i, client, 0, client<<3 | 3} }
	drain := []byte{fzDrain, 200}
	tickAll := func(k byte) []byte { return []byte{fzTickAll, k} }
	// Checkpoints and trimming while replica 2 is cut off (large values: a
	// checkpoint of several chunks).
	cutOff := fzRepeat(10, big(0, 0), []byte{fzDrainExcept, 2, 100}, put(0, 1), []byte{fzDrainExcept, 2, 100},
		tickAll(1), []byte{fzDrainExcept, 2, 100})
	catchUp := fzRepeat(8, tickAll(0), drain)
	return []fzSeed{
		{"normal operation, n=3", fzProgram(0, put(0, 0), drain, put(0, 1), drain, put(1, 2), drain, tickAll(3), drain)},
		{"normal operation, n=5", fzProgram(1, put(0, 0), drain, put(0, 1), drain, tickAll(3), drain)},
		{"a lone replica; a hint about an unknown replica",
			fzProgram(0x30, put(0, 0), put(0, 1), []byte{fzRequest, 0, 1, 4, 4}, []byte{fzSuspect, 0, 3}, tickAll(2), drain)},
		{"a backup suspects its primary",
			fzProgram(0, put(0, 0), drain, []byte{fzSuspect, 1, 0}, drain, put(1, 1), drain, tickAll(2), drain)},
		{"batching with MaxBatch 2", fzProgram(4, put(0, 0), put(0, 1), put(0, 2), put(0, 3), put(0, 0), drain, tickAll(2), drain)},
		{"uncommitted entries at the primary",
			fzProgram(0, put(0, 0), put(0, 1), []byte{fzDeliverHead}, []byte{fzDeliverHead}, []byte{fzIsolate, 0}, tickAll(1))},
		{"the primary is cut off, n=3",
			fzProgram(0, put(0, 0), drain, fzRepeat(12, tickAll(0), []byte{fzDrainExcept, 0, 100}), put(1, 1), drain, tickAll(4), drain)},
		{"the primary is cut off, n=5",
			fzProgram(1, put(0, 0), put(0, 1), drain, fzRepeat(12, tickAll(0), []byte{fzDrainExcept, 0, 100}), put(1, 2), drain)},
		{"a backup restarts, then the primary",
			fzProgram(0, put(0, 0), drain, []byte{fzRestart, 1}, tickAll(2), drain, put(0, 1), drain,
				[]byte{fzRestart, 0}, fzRepeat(12, tickAll(0), drain), put(1, 2), drain)},
		{"a forged Prepare from the primary", fzProgram(0, put(0, 0), drain, []byte{fzForge, 1, 0, 0, 1, 1, 1, 0, 1, 2, 0, 0, 7}, drain)},
		{"a forged huge batch", fzProgram(0, put(0, 0), drain, []byte{fzForge, 2, 0, 1, 1, 8, 7, 50, 0, 0, 0, 7}, drain)},
		{"a forged NewState", fzProgram(0, put(0, 0), drain, []byte{fzForge, 1, 9, 1, 1, 0, 1, 0, 0, 0, 7, 0, 5}, drain)},
		{"a forged view change to a short log", fzProgram(0, put(0, 0), put(0, 1), drain,
			[]byte{fzForge, 0, 3, 7, 0x31, 2, 11}, []byte{fzForge, 0, 4, 7, 0x31, 2, 19, 0x21, 2, 0, 3}, drain)},
		{"corrupted and misdirected messages",
			fzProgram(0, put(0, 0), []byte{fzMutate, 0, 3, 6}, drain, put(0, 1), []byte{fzMisdirect, 1, 2}, drain)},
		{"reordering and duplicates", fzProgram(0, put(0, 0), put(0, 1), put(0, 2), []byte{fzDeliverAt, 1}, []byte{fzDuplicateAt, 0}, drain)},
		{"checkpoint transfer", fzProgram(0, cutOff, catchUp)},
		{"checkpoint transfer, late checkpoint jobs", fzProgram(fzHdrLateJobs, cutOff, catchUp)},
		{"recovery after trimming", fzProgram(0, cutOff, []byte{fzRestart, 2}, catchUp, put(0, 2), drain)},
		{"a lagging new primary", fzProgram(0,
			fzRepeat(10, put(0, 0), []byte{fzDrainExcept, 1, 100}, tickAll(0), []byte{fzDrainExcept, 1, 100}),
			fzRepeat(16, tickAll(0), []byte{fzDrainExcept, 0, 100}), put(1, 3), drain)},
		{"a full pipeline", fzProgram(0, fzRepeat(12, []byte{fzRequest, 0, 0, 0, 0}), drain, tickAll(2), drain)},
		{"more clients than sessions",
			fzProgram(0, fzRepeat(3, put(0, 0), put(0, 1), put(0, 2), put(0, 3), drain), tickAll(2), drain)},
		{"checkpoint transfer, default bounds", fzProgram(fzHdrDefaultBounds, cutOff, catchUp)},
	}
}

// TestFuzzStepSeedsReachTheirStates checks that the seeds written for bounded
// history still get there, so that the fuzzer starts from those states.
func TestFuzzStepSeedsReachTheirStates(t *testing.T) {
	want := map[string]func(c *fzCluster) bool{
		"checkpoint transfer":                       func(c *fzCluster) bool { return c.installed() > 0 },
		"checkpoint transfer, late checkpoint jobs": func(c *fzCluster) bool { return c.installed() > 0 },
		"recovery after trimming": func(c *fzCluster) bool {
			_, installed := c.replicas[2].CheckpointStats()
			return c.restarted[2] && installed > 0 && c.replicas[2].Status() == StatusNormal
		},
		"a lagging new primary": func(c *fzCluster) bool {
			p := c.replicas[1]
			return p.IsPrimary() && p.View() > 0 && c.installed() > 0
		},
		"a full pipeline": func(c *fzCluster) bool { return c.replyErrors[messages.ReplyError_REPLY_ERROR_BUSY] > 0 },
		"more clients than sessions": func(c *fzCluster) bool {
			return c.replyErrors[messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED] > 0 && c.replicas[0].Sessions() == 3
		},
		"checkpoint transfer, default bounds": func(c *fzCluster) bool {
			return c.replicas[0].CheckpointOpNumber() == 0 && c.replicas[2].CommitNumber() == c.replicas[0].CommitNumber()
		},
	}
	for _, seed := range fzStepSeeds() {
		check, ok := want[seed.name]
		if !ok {
			continue
		}
		c := newFzCluster(t, seed.program)
		c.run()
		if !check(c) {
			t.Errorf("seed %q no longer reaches its state:", seed.name)
			for i, r := range c.replicas {
				t.Logf("  replica %d: %s", i, fzState(r))
			}
		}
		delete(want, seed.name)
	}
	for name := range want {
		t.Errorf("no seed %q", name)
	}
}

// installed is the number of checkpoints the replicas installed from peers.
func (c *fzCluster) installed() uint64 {
	var n uint64
	for _, r := range c.replicas {
		_, k := r.CheckpointStats()
		n += k
	}
	return n
}
