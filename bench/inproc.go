package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
)

// The in-process settings: both systems run in this process, next to the
// load generator, so a measurement's allocations are the process's over
// the measured window.

// startVSR starts a 3-replica group in this process, in memory (dir "") or
// durable under dir, with one client of clients sessions, and waits for a
// first write to be acknowledged.
func startVSR(dir string, clients int) (*sut, error) {
	var view atomic.Uint64
	g, err := supervisor.StartGroup(supervisor.GroupConfig{
		ClusterID: 1, Replicas: 3, NewStateMachine: kv.New, DataDir: dir,
		OnEvent: func(e actors.Event) {
			for v := view.Load(); e.View > v && !view.CompareAndSwap(v, e.View); v = view.Load() {
			}
		},
	})
	if err != nil {
		return nil, err
	}
	// One client with a session per writer: a session has one request in
	// flight, and a call waits for a free session.
	cl, err := g.NewClient(clients)
	if err != nil {
		g.Stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Execute(ctx, kv.PutOp("k0", make([]byte, 16))); err != nil {
		cl.Close()
		g.Stop()
		return nil, fmt.Errorf("first write: %w", err)
	}
	return &sut{
		encode: kv.PutOp,
		do: func(ctx context.Context, op []byte) error {
			_, err := cl.Execute(ctx, op)
			return err
		},
		elections: view.Load,
		stop: func() error {
			cl.Close()
			g.Stop()
			return nil
		},
	}, nil
}

// measureInProcess starts a system with start (on dir, which it creates and
// removes), runs the load against it and stops it. Allocations are this
// process's over the measured window divided by the writes acknowledged in
// it: they charge the replicas or nodes, the clients and the load
// generator alike.
func measureInProcess(start func(dir string, clients int) (*sut, error), dir string, p loadParams) (measurement, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return measurement{}, err
	}
	defer os.RemoveAll(dir)
	// Start each system on a collected heap, so that the garbage the
	// previous measurement left is not collected on this one's time.
	runtime.GC()
	s, err := start(dir, p.clients)
	if err != nil {
		return measurement{}, fmt.Errorf("start: %w", err)
	}
	res := runLoad(s, p)
	stopErr := within(30*time.Second, "stopping the system", s.stop)
	if err := res.check(); err != nil {
		return measurement{}, err
	}
	if stopErr != nil {
		return measurement{}, fmt.Errorf("stop: %w", stopErr)
	}
	return measurement{
		opsPerSec:   res.opsPerSec(p.duration),
		p50:         time.Duration(res.window.Quantile(0.50)),
		p99:         time.Duration(res.window.Quantile(0.99)),
		allocsPerOp: float64(res.allocs) / float64(max(res.acked, 1)),
		bytesPerOp:  float64(res.allocBytes) / float64(max(res.acked, 1)),
		errors:      res.errors,
		elections:   res.elections,
	}, nil
}

// within runs f and waits at most d for it: a system that does not stop
// fails its measurement instead of hanging the benchmark (its goroutines
// are then left behind, in this process only).
func within(d time.Duration, what string, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("%s took more than %v", what, d)
	}
}
