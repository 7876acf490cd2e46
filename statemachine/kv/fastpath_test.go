package kv

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// slowApply is Apply without the fast path.
func slowApply(s *Store, op []byte) []byte { return mustMarshal(s.apply(op)) }

// checkSamePaths applies op to two equal stores, one through Apply and one
// through the general path, and requires the same Result and the same
// state after.
func checkSamePaths(t testing.TB, fast, slow *Store, op []byte) {
	got, want := fast.Apply(op), slowApply(slow, op)
	gr, err1 := DecodeResult(got)
	wr, err2 := DecodeResult(want)
	require.NoError(t, err1)
	require.NoError(t, err2)
	require.True(t, proto.Equal(gr, wr), "op %x: fast %v, general %v", op, gr, wr)
	fs, err := fast.Snapshot()
	require.NoError(t, err)
	ss, err := slow.Snapshot()
	require.NoError(t, err)
	require.True(t, bytes.Equal(fs, ss), "op %x: the stores differ after it", op)
}

// Puts take the fast path and everything else the general one; either way
// an op gets the Result and leaves the state that the general path gives,
// including for ops near a put's encoding (empty fields, extra or
// reordered fields, truncations, flipped bytes).
func TestFastPathPutsAgreeWithTheGeneralPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fast, slow := NewStore(), NewStore()
	randBytes := func(max int) []byte {
		b := make([]byte, rng.IntN(max+1))
		for i := range b {
			b[i] = byte(rng.IntN(4)) // few distinct keys, so puts replace
		}
		return b
	}
	for range 20000 {
		op := PutOp(string(randBytes(2)), randBytes(3))
		switch rng.IntN(6) {
		case 0: // a flipped byte
			if len(op) > 0 {
				op[rng.IntN(len(op))] ^= byte(1 + rng.IntN(255))
			}
		case 1: // a truncation
			op = op[:rng.IntN(len(op)+1)]
		case 2: // a trailing field
			op = append(op, randBytes(3)...)
		case 3: // another kind of op
			op = [][]byte{GetOp("\x01"), DeleteOp("\x02"), CASOp("\x00", nil, []byte("x"))}[rng.IntN(3)]
		}
		if _, _, ok := parsePut(op); ok {
			key, value, _ := parsePut(op)
			require.Equal(t, PutOp(string(key), value), op, "the fast path takes only PutOp's own encoding")
		}
		checkSamePaths(t, fast, slow, op)
	}
}

func FuzzFastPathAgreesWithTheGeneralPath(f *testing.F) {
	f.Add(PutOp("k", []byte("v")))
	f.Add(PutOp("", []byte("v")))
	f.Add(PutOp("k", nil))
	f.Add(GetOp("k"))
	f.Fuzz(func(t *testing.T, op []byte) {
		fast, slow := NewStore(), NewStore()
		checkSamePaths(t, fast, slow, PutOp("k", []byte("old")))
		checkSamePaths(t, fast, slow, op)
	})
}
