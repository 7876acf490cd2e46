package main

import (
	"fmt"

	"github.com/vsrgo/vsr/metrics"
)

// servePprof serves Go's profiles (net/http/pprof) at addr on a server of
// its own, so nothing else is exposed, and returns the address it listens
// on and a function that stops it. The profiles show what a node spends its
// CPU and memory on under a real load:
//
//	go tool pprof -seconds 10 http://127.0.0.1:6060/debug/pprof/profile
func servePprof(addr string) (string, func(), error) {
	srv, err := metrics.Serve(addr, metrics.HandlerConfig{Pprof: true})
	if err != nil {
		return "", nil, fmt.Errorf("-pprof: %w", err)
	}
	return srv.Addr(), func() { _ = srv.Close() }, nil
}
