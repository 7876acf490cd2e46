package vsr

// rng is SplitMix64 (Steele, Lea & Flood, 2014): a tiny, fast, seedable
// generator. The core cannot import math/rand (its global source is not
// seeded by us, and a replay must draw exactly the same numbers), so it
// carries its own.
type rng struct{ state uint64 }

func newRNG(seed uint64) *rng { return &rng{state: seed} }

// next returns the next 64 random bits.
func (g *rng) next() uint64 {
	g.state += 0x9e3779b97f4a7c15
	z := g.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n). n must be positive.
func (g *rng) intn(n int) int { return int(g.next() % uint64(n)) }
