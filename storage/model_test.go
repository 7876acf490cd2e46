package storage

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vsrgo/vsr/messages"
)

// model is the reference the stores are checked against: the whole log,
// never compacted, as a map, with Batch's semantics applied literally.
type model struct {
	hs     HardState
	log    map[uint64]*messages.Entry
	lastOp uint64
	ckpt   uint64
}

func newModel() *model { return &model{log: map[uint64]*messages.Entry{}} }

func (m *model) clone() *model {
	c := *m
	c.log = maps.Clone(m.log)
	return &c
}

func (m *model) apply(b Batch) {
	if b.LogFrom != 0 {
		for op := range m.log {
			if op >= b.LogFrom {
				delete(m.log, op)
			}
		}
		for _, e := range b.Entries {
			m.log[e.OpNumber] = e
		}
		m.lastOp = b.LogFrom - 1 + uint64(len(b.Entries))
	}
	if b.HardState != nil {
		m.hs = *b.HardState
	}
}

// diff says how st differs from what the model holds with the checkpoint
// st returned (the caller checks that checkpoint is an allowed one).
func (m *model) diff(st State) string {
	if st.Damage != nil {
		// A damaged store comes back recovering (see Load).
		if !st.HardState.Recovering {
			return fmt.Sprintf("damaged (%v) but the hard state %+v is not marked recovering", st.Damage, st.HardState)
		}
		st.HardState.Recovering = m.hs.Recovering
	}
	if st.HardState != m.hs {
		return fmt.Sprintf("hard state %+v, want %+v", st.HardState, m.hs)
	}
	var c uint64
	if st.Checkpoint != nil {
		c = st.Checkpoint.OpNumber
	}
	var want []string
	for op := c + 1; op <= m.lastOp; op++ {
		e := m.log[op]
		if e == nil {
			return fmt.Sprintf("the model lacks op %d (checkpoint %d, last op %d)", op, c, m.lastOp)
		}
		want = append(want, string(e.Operation))
	}
	var got []string
	for _, e := range st.Entries {
		got = append(got, string(e.Operation))
	}
	if !slices.Equal(got, want) {
		return fmt.Sprintf("entries %q, want %q (checkpoint %d)", got, want, c)
	}
	return ""
}

// gen makes random well-formed work for a store like a VR replica's: the
// log is cut only above the commit number, commits stay within the log,
// checkpoints are of committed ops, and now and then a checkpoint is
// installed past the log's end and the log restarts after it.
type gen struct {
	r     *rand.Rand
	m     *model
	view  uint64
	nonce int
}

// batches returns 1 to 4 batches, applied to g.m.
func (g *gen) batches() []Batch {
	var bs []Batch
	for range 1 + g.r.IntN(4) {
		b := g.batch()
		g.m.apply(b)
		bs = append(bs, b)
	}
	return bs
}

func (g *gen) batch() Batch {
	m := g.m
	var b Batch
	if g.r.IntN(5) > 0 {
		lo := max(m.hs.CommitNumber+1, m.lastOp-min(m.lastOp, 3))
		lo = max(lo, 1)
		b.LogFrom = lo + g.r.Uint64N(m.lastOp+2-lo)
		if b.LogFrom <= m.lastOp {
			g.view++ // a rewrite: new content for the same ops
		}
		n := g.r.IntN(5)
		for i := range n {
			g.nonce++
			e := ent(b.LogFrom+uint64(i), g.view)
			e.Operation = fmt.Appendf(nil, "op %d of view %d #%d", e.OpNumber, e.View, g.nonce)
			b.Entries = append(b.Entries, e)
		}
	}
	if b.LogFrom == 0 || g.r.IntN(2) == 0 {
		last := m.lastOp
		if b.LogFrom != 0 {
			last = b.LogFrom - 1 + uint64(len(b.Entries))
		}
		commit := m.hs.CommitNumber
		if last > commit {
			commit += g.r.Uint64N(last - commit + 1)
		}
		b.HardState = &HardState{View: g.view, LastNormalView: g.view, CommitNumber: commit, Recovering: g.r.IntN(9) == 0}
	}
	return b
}

// checkpointOp returns a committed op past the model's checkpoint, or 0.
func (g *gen) checkpointOp() uint64 {
	if g.m.hs.CommitNumber <= g.m.ckpt {
		return 0
	}
	return g.m.ckpt + 1 + g.r.Uint64N(g.m.hs.CommitNumber-g.m.ckpt)
}

// install returns a checkpoint past the log's end and the batch that
// restarts the log after it, as after a state transfer.
func (g *gen) install() (Checkpoint, Batch) {
	op := g.m.lastOp + 1 + g.r.Uint64N(5)
	g.view++
	b := Batch{LogFrom: op + 1, Entries: ents(op+1, op+1+g.r.Uint64N(3), g.view),
		HardState: &HardState{View: g.view, LastNormalView: g.view, CommitNumber: op}}
	return cp(op, fmt.Sprint("installed ", op)), b
}

// TestStoresAgreeWithModel drives MemStore and FileStore (small segments,
// reopened now and then) with the same random work, and checks each Load
// against the model.
func TestStoresAgreeWithModel(t *testing.T) {
	for seed := range uint64(40) {
		r := rng(seed)
		g := &gen{r: r, m: newModel()}
		fsys := NewMemFS()
		opts := Options{SegmentBytes: 256 + int64(r.IntN(2000))}
		fstore, _ := openMem(t, fsys, opts)
		mem := NewMemStore()
		check := func(what string, st State, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("seed %d: %s: Load: %v", seed, what, err)
			}
			wantClean(t, st)
			c := uint64(0)
			if st.Checkpoint != nil {
				c = st.Checkpoint.OpNumber
			}
			if c != g.m.ckpt {
				t.Fatalf("seed %d: %s: checkpoint %d, want %d", seed, what, c, g.m.ckpt)
			}
			if d := g.m.diff(st); d != "" {
				t.Fatalf("seed %d: %s: %s", seed, what, d)
			}
		}
		both := func(f func(Store) error) {
			t.Helper()
			for _, s := range []Store{fstore, mem} {
				if err := f(s); err != nil {
					t.Fatalf("seed %d: %T: %v", seed, s, err)
				}
			}
		}
		for step := range 150 {
			switch k := r.IntN(20); {
			case k < 14:
				bs := g.batches()
				both(func(s Store) error { return s.Save(bs) })
			case k < 16:
				if op := g.checkpointOp(); op != 0 {
					g.m.ckpt = op
					both(func(s Store) error { return s.SaveCheckpoint(cp(op, fmt.Sprint("state ", op))) })
				}
			case k < 17:
				c, b := g.install()
				g.m.ckpt = c.OpNumber
				g.m.apply(b)
				both(func(s Store) error { return s.SaveCheckpoint(c) })
				both(func(s Store) error { return s.Save([]Batch{b}) })
			case k < 19:
				through := g.m.ckpt + g.r.Uint64N(3)
				both(func(s Store) error { return s.Compact(through) })
			default:
				var st State
				fstore, st = reopen(t, fstore, opts)
				check(fmt.Sprint("FileStore after reopen at step ", step), st, nil)
			}
			st, err := mem.Load()
			check(fmt.Sprint("MemStore at step ", step), st, err)
		}
		_, st := reopen(t, fstore, opts)
		check("FileStore at the end", st, nil)
	}
}
