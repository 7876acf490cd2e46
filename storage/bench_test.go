package storage

import (
	"fmt"
	"testing"

	"github.com/vsrgo/vsr/messages"
)

// BenchmarkFileStoreSave measures group commits on the real file system:
// each Save holds n batches of one entry with a 64-byte operation, and
// costs one fsync. ops/s counts entries made durable per second.
func BenchmarkFileStoreSave(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("batches=%d", n), func(b *testing.B) {
			s, err := Open(OSFS{}, b.TempDir(), testID, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Load(); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			op := uint64(0)
			batches := make([]Batch, n)
			payload := make([]byte, 64)
			b.ResetTimer()
			for b.Loop() {
				for i := range batches {
					op++
					batches[i] = Batch{LogFrom: op, Entries: []*messages.Entry{{OpNumber: op, View: 1, Operation: payload}}}
				}
				if err := s.Save(batches); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(op)/b.Elapsed().Seconds(), "ops/s")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
		})
	}
}
