// Package procstats reads figures about the running process that the
// replicas' status and the benchmarks report.
package procstats

import "runtime/metrics"

// Allocs returns the process's heap allocations since it started, objects
// and bytes, from runtime/metrics: no collection and no stop of the world,
// so it is cheap enough to read on every status query. The difference over
// a window is the allocation cost of the work done in it.
func Allocs() (objects, bytes uint64) {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(samples)
	if samples[0].Value.Kind() == metrics.KindUint64 {
		objects = samples[0].Value.Uint64()
	}
	if samples[1].Value.Kind() == metrics.KindUint64 {
		bytes = samples[1].Value.Uint64()
	}
	return objects, bytes
}
