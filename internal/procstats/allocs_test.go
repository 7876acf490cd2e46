package procstats

import (
	"testing"

	"github.com/stretchr/testify/require"
)

var sink []byte

// Allocating counts: the figures grow by at least what was allocated.
func TestAllocsGrowWithAllocations(t *testing.T) {
	o0, b0 := Allocs()
	for range 1000 {
		sink = make([]byte, 1024)
	}
	o1, b1 := Allocs()
	require.GreaterOrEqual(t, o1-o0, uint64(500)) // per-P counts are flushed lazily
	require.GreaterOrEqual(t, b1-b0, uint64(500*1024))
}
