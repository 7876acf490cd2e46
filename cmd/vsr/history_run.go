package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// The closed-loop load of vsr history, and the run that reports on it.

type mark struct {
	n  int64
	at time.Time
}

type historyLoad struct {
	cl         historyWriter
	keys       []string
	value      int
	opTimeout  time.Duration
	counting   atomic.Bool
	counted    atomic.Int64
	uncounted  atomic.Int64
	retries    atomic.Int64
	rejected   atomic.Int64
	killedAt   atomic.Int64 // UnixNano of a kill, 0 if none pending
	firstAfter atomic.Int64 // UnixNano of the first load write sent after it and acknowledged
	isMark     func(int64) bool
	marks      chan mark
	// endAtMark makes the first mark end the measurement: acknowledgements
	// after it (the clients run on until stop) are neither counted nor
	// recorded, so a run of N writes reports N, give or take the writes
	// that finished at the same moment on other clients.
	endAtMark bool
	lat       [][]time.Duration // per client, when recording
	acks      [][]time.Time     // per client, when recording
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

func historyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%08d", i)
	}
	return keys
}

// start runs clients closed-loop writers: each sends one write, waits for
// its answer (resending it after an error), and sends the next.
func (l *historyLoad) start(clients int, record bool) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.counting.Store(true)
	if record {
		l.lat = make([][]time.Duration, clients)
		l.acks = make([][]time.Time, clients)
	}
	for k := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(k), uint64(time.Now().UnixNano())))
			val := bytes.Repeat([]byte{'v'}, l.value)
			for seq := uint64(0); ctx.Err() == nil; seq++ {
				binary.BigEndian.PutUint64(val[:min(8, len(val))], seq<<8|uint64(k&0xff))
				op := kv.PutOp(l.keys[rng.IntN(len(l.keys))], val)
				sent := time.Now()
				ok := false
				for ctx.Err() == nil {
					c, cancel := context.WithTimeout(ctx, l.opTimeout)
					_, err := l.cl.Execute(c, op)
					cancel()
					if err == nil {
						ok = true
						break
					}
					if errors.Is(err, actors.ErrRejected) || errors.Is(err, actors.ErrClosed) {
						l.rejected.Add(1)
						break
					}
					if ctx.Err() == nil {
						l.retries.Add(1)
					}
				}
				if !ok {
					continue
				}
				now := time.Now()
				if at := l.killedAt.Load(); at != 0 && sent.UnixNano() > at {
					l.firstAfter.CompareAndSwap(0, now.UnixNano())
				}
				if !l.counting.Load() {
					l.uncounted.Add(1)
					continue
				}
				n := l.counted.Add(1)
				if record {
					l.lat[k] = append(l.lat[k], now.Sub(sent))
					l.acks[k] = append(l.acks[k], now)
				}
				if l.isMark != nil && l.isMark(n) {
					if l.endAtMark {
						l.counting.Store(false)
					}
					l.marks <- mark{n: n, at: now}
				}
			}
		}()
	}
}

func (l *historyLoad) stop() {
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
}

type historyRow struct {
	ops        int64
	rate       float64
	st         []replicaFigures
	afterKills int // failovers before this row
}

type failoverResult struct {
	at                       int64
	killed, newPrimary       int
	failover, firstLoadWrite time.Duration
	viewChange               time.Duration // until a status poll saw the new primary
	reachable                time.Duration // restart until the restarted replica first answered a status
	recovery                 time.Duration
	recovered                bool
	installed                uint64
	st                       replicaFigures
	probeErr                 error
	timeline                 string   // the restarted node's own events (loopback)
	trace                    []string // with -trace-recovery
}

func runHistory(mode string, o historyOptions, stdout, stderr io.Writer) int {
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	var t historyTarget
	var err error
	started := time.Now()
	switch mode {
	case "inproc":
		var it *inprocTarget
		it, err = startInproc(o, kv.New)
		t = it
	case "loopback":
		var lt *loopbackTarget
		lt, err = startLoopback(o)
		t = lt
	}
	if err != nil {
		fmt.Fprintf(stderr, "vsr history: %s: %v\n", mode, err)
		return 1
	}
	defer t.stop()
	fail := func(format string, a ...any) int {
		say("%s: FAILED: %s", mode, fmt.Sprintf(format, a...))
		if lt, ok := t.(*loopbackTarget); ok {
			fmt.Fprint(stderr, lt.nodeOutput())
		}
		return 1
	}
	if waitPrimary(t, 20*time.Second, -1) < 0 {
		return fail("no primary within 20s of starting")
	}
	// The probe client registers its session now, so that the write it
	// sends after a kill is one request, as the load's are.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, err = t.probe().Execute(ctx, kv.PutOp("history-failover-probe", []byte("0")))
	cancel()
	if err != nil {
		return fail("the first write: %v", err)
	}
	where := map[string]string{"inproc": "3 replicas in this process", "loopback": "3 'vsr node' processes on 127.0.0.1"}[mode]
	say("%s: %s; %d clients write %d-byte values to %d keys until %d writes are acknowledged", mode, where, o.clients, o.value, o.keys, o.ops)
	say("%s: checkpoint every %d ops, trailing ops %s, pipeline max %s, max message %d KiB; kill the primary at %v",
		mode, o.interval(), orDefault(o.trailingOps, vsr.DefaultTrailingOps), orDefault(o.pipelineMax, vsr.DefaultPipelineMax),
		vsr.DefaultMaxMessageBytes>>10, o.failoverAt)

	failovers := map[int64]bool{}
	for _, f := range o.failoverAt {
		if f <= o.ops {
			failovers[f] = true
		}
	}
	isMark := func(n int64) bool { return n <= o.ops && (n%o.every == 0 || n == o.ops || failovers[n]) }
	marks := int(o.ops/o.every) + len(failovers) + 2
	l := &historyLoad{cl: t.writer(), keys: historyKeys(o.keys), value: o.value, opTimeout: o.opTimeout,
		isMark: isMark, marks: make(chan mark, marks)}
	l.start(o.clients, false)
	defer l.stop()

	heapCols := 1
	if t.heapPerReplica() {
		heapCols = 3
	}
	header := formatHeader(mode, heapCols)
	say("%s", header)
	var rows []historyRow
	var fos []failoverResult
	baseN, baseT := int64(0), time.Now()
	for {
		var m mark
		select {
		case m = <-l.marks:
		case <-time.After(o.stallTimeout):
			return fail("no progress for %s at %d acknowledged writes (%d retries); status: %s",
				o.stallTimeout, l.counted.Load(), l.retries.Load(), describeFigures(t.figures(false, false, 2*time.Second)))
		}
		if m.n%o.every == 0 || m.n == o.ops {
			rate := float64(m.n-baseN) / m.at.Sub(baseT).Seconds()
			st := t.figures(true, false, 5*time.Second)
			row := historyRow{ops: m.n, rate: rate, st: st, afterKills: len(fos)}
			rows = append(rows, row)
			say("%s", formatRow(mode, row, heapCols))
			baseN, baseT = l.counted.Load(), time.Now()
		}
		if failovers[m.n] {
			fo, err := failover(t, l, m.n, o)
			if err != nil {
				return fail("failover at %d: %v", m.n, err)
			}
			fos = append(fos, fo)
			say("%s", formatFailover(mode, fo))
			if !fo.recovered {
				return fail("replica %d did not catch up within %s of its restart: %s", fo.killed, o.recoverTimeout,
					describeFigures(t.figures(false, false, 2*time.Second)))
			}
			if m.n < o.ops {
				say("%s", header)
			}
			baseN, baseT = l.counted.Load(), time.Now()
		}
		if m.n >= o.ops {
			break
		}
	}
	l.stop()
	say("%s: %d writes acknowledged and counted in %s, %d more during failovers; %d resent after an error, %d refused",
		mode, l.counted.Load(), time.Since(started).Round(time.Second), l.uncounted.Load(), l.retries.Load(), l.rejected.Load())
	final, converged := converge(t, 30*time.Second)
	for i, s := range final {
		say("%s: replica %d: %s view %d commit %d log base %d checkpoint %d sessions %d largest msg %d B checkpoints installed %d oversized %d checkpoint failures %d state %x",
			mode, i, statusWord(s), s.View, s.Commit, s.LogBase, s.Checkpoint, s.Sessions, s.Largest, s.Installed, s.Oversized, s.CPFailures, first6(s.Digest))
	}
	if converged {
		say("%s: the 3 replicas converged: same commit number and the same state digest", mode)
	} else {
		say("%s: the replicas DID NOT CONVERGE within 30s", mode)
	}
	printHistorySummary(say, mode, rows, fos, heapCols)
	if !converged {
		return 1
	}
	return 0
}
