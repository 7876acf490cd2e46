package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/sim"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// The figures of TestProcessesLongHistoryKill9AndCheckpointRecovery. The
// history must be at least ten times the 4 MiB that gRPC refuses by default
// (and 40 times MaxMessageBytes), so that nothing in it can still fit in
// one message: 20,000 keys of 200-byte values make a state of about 4 MiB,
// whose checkpoint takes at least four 1 MiB chunks, and 40 MiB of put
// operations are about 196,000 of them (51 MiB of log entries). The values
// are 200 bytes rather than 100 because per-op costs, not bytes, bound the
// group's throughput on two cores: larger values reach 40 MiB with half
// the ops, in the time the test has.
const (
	historyBulkKeys    = 20000
	historyValueBytes  = 200
	historyTargetBytes = 40 << 20
	// historyBulkWriters is the number of goroutines of the bulk load,
	// and the sessions of its client: enough to keep the primary's
	// batches full.
	historyBulkWriters = 96
	// historyCheckedKeys and historyCheckedClients are the keys and
	// clients of the porcupine-checked workload.
	historyCheckedKeys    = 8
	historyCheckedClients = 4
	// historyFailoverBound bounds the time from kill -9 of the primary to
	// the first write sent after the kill being acknowledged. The backups
	// notice the loss at once through the membership hint (or after the
	// 300-450 ms inactivity timeout without it), and the view change
	// carries at most the 1024-op pipeline: BenchmarkFailoverKill9 and
	// the demo measure a few hundred milliseconds at most, and this test,
	// under its own load, 30-300 ms (also with two busy loops competing
	// for the two cores). 5 s leaves room for a loaded machine and is
	// still a quarter of the 20 s the other kill -9 tests allow: it fails
	// a failover that waits out more than two of remoting's reconnection
	// attempts (2 s apart) or several view-change timeouts.
	historyFailoverBound = 5 * time.Second
)

// Three node processes build a history far larger than any message may be
// (over 40 MiB of operations, against 1 MiB messages) under concurrent
// writers; the primary is killed with SIGKILL while they write, the others
// must serve writes again within historyFailoverBound; the killed node is
// restarted with its address and data directory, keeping no disk (-memory) so that it runs recovery, and
// must come back through the chunked checkpoint transfer (its log cannot
// hold the history: the others have discarded all but the ops since their
// latest checkpoint and TrailingOps before it). No message any replica sent
// may exceed MaxMessageBytes, the three must converge, every acknowledged
// write must be there at the end, and the checked part of the history must
// be linearizable.
//
// The bulk load is not checked by porcupine, and not because of porcupine:
// each of its keys is written by one goroutine only, so whether it kept its
// writes is decided exactly by reading every key at the end (the value must
// be the last acknowledged write's, or one whose outcome the writer never
// learned), without recording 200,000 operations. Porcupine checks what
// needs it: a few clients that put, read linearizably (no log entry),
// compare-and-swap and put-if-absent on a few keys of their own,
// concurrently with each other, the bulk load, the failover and the
// recovery, and finally read every one of those keys.
func TestProcessesLongHistoryKill9AndCheckpointRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and writes 40 MiB")
	}
	started := time.Now()
	addrs := freeAddrs(t, 3)
	replicas := strings.Join(addrs, ",")
	dir := t.TempDir()
	// Every process this test started, to dump its output if it fails.
	var all []*nodeProc
	defer func() {
		if t.Failed() {
			dumpNodeOutput(t, all)
		}
	}()
	start := func(i int) *nodeProc {
		p := startNodeProc(t, nil, replicas, i, filepath.Join(dir, fmt.Sprint(i)), "-verbose", "-memory")
		all = append(all, p)
		return p
	}
	procs := make([]*nodeProc, 3)
	for i := range procs {
		procs[i] = start(i)
	}
	cfg := Config{ClusterID: 1, Replicas: addrs}
	bulkClient, err := NewClient(cfg, ClientOptions{Sessions: historyBulkWriters})
	require.NoError(t, err)
	defer bulkClient.Close()
	checkedClient, err := NewClient(cfg, ClientOptions{Sessions: historyCheckedClients + 1})
	require.NoError(t, err)
	defer checkedClient.Close()
	// The probe measures failover: one session that resends every 25 ms,
	// so that the figure is the group's, not the client's patience.
	probe, err := NewClient(cfg, ClientOptions{RetryInterval: 25 * time.Millisecond})
	require.NoError(t, err)
	defer probe.Close()
	c := bulkClient // for status queries
	waitFor(t, "a primary", 15*time.Second, func() bool { return primaryOf(c.StatusWithoutDigest(time.Second)) >= 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = probe.Execute(ctx, kv.PutOp("probe", []byte("warm")))
	require.NoError(t, err)

	bulk := newBulkLoad(historyBulkKeys, historyBulkWriters, historyValueBytes)
	checked := &workload{start: time.Now()}
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var loadDone sync.WaitGroup
	loadDone.Add(2)
	go func() { defer loadDone.Done(); bulk.run(loadCtx, bulkClient.Client) }()
	go func() {
		defer loadDone.Done()
		runChecked(loadCtx, checked, checkedClient.Client, historyCheckedClients, historyCheckedKeys)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopLoad()
			loadDone.Wait()
		}
	}
	defer stop()
	progress := func(what string) {
		t.Logf("%6.1fs  %s: %d puts acknowledged (%.1f MiB of operations), %d unknown; %d checked ops",
			time.Since(started).Seconds(), what, bulk.acked.Load(), float64(bulk.opBytes.Load())/(1<<20),
			bulk.unknown.Load(), checked.ok.Load())
	}

	// Kill the primary a third of the way in: by then the replicas have
	// taken checkpoints and discarded the log below them, so the killed
	// node cannot recover by replaying the log.
	waitFor(t, "a third of the history", 60*time.Second, func() bool {
		return bulk.opBytes.Load() >= historyTargetBytes/3 || bulk.failed()
	})
	require.False(t, bulk.failed(), "bulk load: %v", bulk.firstErr())
	before := c.StatusWithoutDigest(time.Second)
	p := primaryOf(before)
	require.GreaterOrEqual(t, p, 0)
	logStatus(t, "before the kill", before)
	logMemory(t, c)
	require.Greater(t, before[p].LogBase, uint64(0), "the primary discarded part of its log")
	progress(fmt.Sprintf("kill -9 of the primary, replica %d", p))
	procs[p].kill9()
	killed := time.Now()
	bulk.markKill(killed)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = probe.Execute(ctx, kv.PutOp("probe", []byte("after the kill")))
	require.NoError(t, err, "a write after the kill")
	failover := time.Since(killed)
	progress(fmt.Sprintf("a write sent after the kill acknowledged within %s", failover.Round(time.Millisecond)))
	require.LessOrEqual(t, failover, historyFailoverBound, "failover after kill -9 of the primary")
	waitFor(t, "a bulk put sent after the kill to be acknowledged", 10*time.Second, func() bool { return bulk.firstAck.Load() != 0 })
	t.Logf("first bulk put sent after the kill acknowledged %s after it", time.Duration(bulk.firstAck.Load()-killed.UnixNano()).Round(time.Millisecond))

	// Restart it on the same address and data directory: it recovers.
	procs[p] = start(p)
	restarted := time.Now()
	var rs *actors.StatusReply
	waitFor(t, "the restarted node to recover", 30*time.Second, func() bool {
		rs = c.StatusWithoutDigest(time.Second)[p]
		return (rs != nil && rs.Status == "normal") || bulk.failed()
	})
	require.False(t, bulk.failed(), "bulk load: %v", bulk.firstErr())
	progress(fmt.Sprintf("replica %d normal %s after its restart (log base %d, checkpoint %d, %d checkpoints installed)",
		p, time.Since(restarted).Round(time.Millisecond), rs.LogBase, rs.CheckpointOpNumber, rs.CheckpointsInstalled))
	require.Contains(t, procs[p].out.String(), "recovering from its peers", "the restarted node ran recovery")
	require.GreaterOrEqual(t, rs.CheckpointsInstalled, uint64(1), "the restarted node installed a checkpoint")
	require.Greater(t, rs.LogBase, uint64(0), "the restarted node holds no log below its checkpoint")

	waitFor(t, "the whole history", 90*time.Second, func() bool {
		return bulk.opBytes.Load() >= historyTargetBytes || bulk.failed()
	})
	stop()
	require.False(t, bulk.failed(), "bulk load: %v", bulk.firstErr())
	progress("load stopped")

	waitFor(t, "the replicas to converge", 30*time.Second, func() bool { return converged(c) })
	final := c.Status(5 * time.Second)
	logStatus(t, "converged", final)
	entry := entryBytes(historyValueBytes)
	t.Logf("history: %d ops committed, about %.1f MiB of log entries (%d bytes each); %.1f MiB of acknowledged put operations",
		final[0].CommitNumber, float64(final[0].CommitNumber)*float64(entry)/(1<<20), entry,
		float64(bulk.opBytes.Load())/(1<<20))
	require.GreaterOrEqual(t, bulk.opBytes.Load(), int64(historyTargetBytes), "acknowledged operations, in bytes")
	for j, s := range final {
		require.NotNil(t, s, "replica %d", j)
		require.Greater(t, s.LogBase, uint64(0), "replica %d discarded part of its log", j)
		require.LessOrEqual(t, s.LargestMessage, uint64(vsr.DefaultMaxMessageBytes), "replica %d's largest message", j)
		require.Zero(t, s.Oversized, "replica %d refused oversized messages", j)
		require.Zero(t, s.CheckpointFailures, "replica %d's checkpoint failures", j)
	}
	require.GreaterOrEqual(t, final[p].CheckpointsInstalled, uint64(1), "the restarted node installed a checkpoint")
	logMemory(t, c)
	t.Logf("state: about %.1f MiB of keys and values, more than %d checkpoint chunks of at most %d bytes",
		float64(historyBulkKeys*(len(bulkKey(0))+historyValueBytes))/(1<<20),
		historyBulkKeys*(len(bulkKey(0))+historyValueBytes)/vsr.DefaultMaxMessageBytes, vsr.DefaultMaxMessageBytes)

	// Every acknowledged write is there: every bulk key, read back.
	readStart := time.Now()
	require.NoError(t, bulk.verify(bulkClient.Client))
	t.Logf("read back all %d bulk keys in %s", historyBulkKeys, time.Since(readStart).Round(time.Millisecond))
	// The checked keys are read once more, as part of their history.
	finalReads(t, checked, checkedClient.Client, historyCheckedClients, historyCheckedKeys)
	checkStart := time.Now()
	t.Logf("checked workload: %d of %d compare-and-swaps swapped", casSwapped.Load(), casTried.Load())
	checked.check(t)
	t.Logf("porcupine checked %d ops on %d keys in %s", checked.history.Len(), historyCheckedKeys,
		time.Since(checkStart).Round(time.Millisecond))
	t.Logf("total %s", time.Since(started).Round(time.Millisecond))
}

// bulkLoad puts fixed-size values to a fixed set of keys from many
// goroutines. Writer w alone writes the keys i with i mod writers == w, one
// call at a time, so each key's final value is known: that of the writer's
// last acknowledged put to it, or that of any put to it whose outcome the
// writer never learned (a timed-out request may still execute, even after
// later ones, so any of them may be last).
type bulkLoad struct {
	keys, writers, valueBytes int
	acked, unknown, opBytes   atomic.Int64
	// Per key, owned by the key's writer until run returns.
	lastAcked []int64          // the seq of the last acknowledged put, -1 if none
	open      []map[int64]bool // seqs of puts with unknown outcome
	mu        sync.Mutex
	errs      []error
	killAt    atomic.Int64 // unix nanos of the kill, 0 before
	firstAck  atomic.Int64 // unix nanos of the first ack of a put sent after the kill
}

func newBulkLoad(keys, writers, valueBytes int) *bulkLoad {
	b := &bulkLoad{keys: keys, writers: writers, valueBytes: valueBytes,
		lastAcked: make([]int64, keys), open: make([]map[int64]bool, keys)}
	for i := range b.lastAcked {
		b.lastAcked[i] = -1
	}
	return b
}

func bulkKey(i int) string { return fmt.Sprintf("b%05d", i) }

// bulkValue is "key.seq." padded with 'x' to size bytes.
func bulkValue(key int, seq int64, size int) []byte {
	v := []byte(fmt.Sprintf("%d.%d.", key, seq))
	for len(v) < size {
		v = append(v, 'x')
	}
	return v
}

// parseBulkValue returns the key and seq of a bulkValue.
func parseBulkValue(v []byte) (key int, seq int64, err error) {
	f := strings.SplitN(string(v), ".", 3)
	if len(f) != 3 {
		return 0, 0, fmt.Errorf("not a bulk value: %.40q", v)
	}
	k, err1 := strconv.Atoi(f[0])
	s, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("not a bulk value: %.40q", v)
	}
	return k, s, nil
}

func (b *bulkLoad) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, err)
}

func (b *bulkLoad) failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.errs) > 0
}

func (b *bulkLoad) firstErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%d errors, the first: %w", len(b.errs), b.errs[0])
}

func (b *bulkLoad) markKill(at time.Time) { b.killAt.Store(at.UnixNano()) }

// run writes until ctx ends. Each writer puts to one of its own keys,
// picked at random each time (about ten puts per key over the test).
func (b *bulkLoad) run(ctx context.Context, c *actors.Client) {
	var wg sync.WaitGroup
	for w := 0; w < b.writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			var mine []int
			for i := w; i < b.keys; i += b.writers {
				mine = append(mine, i)
			}
			for seq := int64(0); ctx.Err() == nil; seq++ {
				b.put(c, mine[rng.IntN(len(mine))], seq)
			}
		}(w)
	}
	wg.Wait()
}

func (b *bulkLoad) put(c *actors.Client, key int, seq int64) {
	op := kv.PutOp(bulkKey(key), bulkValue(key, seq, b.valueBytes))
	sent := time.Now().UnixNano()
	// The same per-call timeout as the checked workload: long enough for a
	// failover, short enough that a call stuck on the dead primary gives
	// up and the writer moves on.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := c.Execute(ctx, op)
	cancel()
	if err != nil {
		b.unknown.Add(1)
		if b.open[key] == nil {
			b.open[key] = map[int64]bool{}
		}
		b.open[key][seq] = true
		if !errors.Is(err, actors.ErrTimeout) && !errors.Is(err, actors.ErrClosed) {
			b.fail(fmt.Errorf("put %s: %w", bulkKey(key), err))
		}
		return
	}
	b.lastAcked[key] = seq
	b.acked.Add(1)
	b.opBytes.Add(int64(len(op)))
	if k := b.killAt.Load(); k != 0 && sent > k {
		b.firstAck.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// verify reads every key (linearizable reads, many at once) and checks it
// against what its writer learned. Call it once run has returned.
func (b *bulkLoad) verify(c *actors.Client) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	var checked atomic.Int64
	next := atomic.Int64{}
	for w := 0; w < b.writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.keys {
					return
				}
				msg := b.verifyKey(c, i)
				checked.Add(1)
				if msg != "" {
					mu.Lock()
					bad = append(bad, msg)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		n := min(len(bad), 10)
		return fmt.Errorf("%d of %d keys wrong, for example:\n%s", len(bad), checked.Load(), strings.Join(bad[:n], "\n"))
	}
	return nil
}

func (b *bulkLoad) verifyKey(c *actors.Client, i int) string {
	var res []byte
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err = c.Read(ctx, kv.GetOp(bulkKey(i)))
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Sprintf("%s: read: %v", bulkKey(i), err)
	}
	r, err := kv.DecodeResult(res)
	if err != nil {
		return fmt.Sprintf("%s: %v", bulkKey(i), err)
	}
	acked, open := b.lastAcked[i], b.open[i]
	if !r.Found {
		if acked >= 0 {
			return fmt.Sprintf("%s: missing; put %d was acknowledged", bulkKey(i), acked)
		}
		return ""
	}
	k, seq, err := parseBulkValue(r.Value)
	if err != nil || k != i {
		return fmt.Sprintf("%s: holds %.40q", bulkKey(i), r.Value)
	}
	if seq != acked && !open[seq] {
		return fmt.Sprintf("%s: holds put %d; the last acknowledged was %d, and %d had unknown outcomes %v",
			bulkKey(i), seq, acked, len(open), open)
	}
	return ""
}

// casTried and casSwapped count the checked workload's compare-and-swaps
// that completed, and those of them that swapped.
var casTried, casSwapped atomic.Int64

// runChecked runs clients on keys "c0".."c<keys-1>" until ctx ends: puts,
// linearizable reads, compare-and-swaps and put-if-absents, each recorded
// in w.history for porcupine.
func runChecked(ctx context.Context, w *workload, c *actors.Client, clients, keys int) {
	var wg sync.WaitGroup
	for k := 0; k < clients; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(k), 13))
			seen := map[string]string{} // the value this client last saw for each key
			for seq := 0; ctx.Err() == nil; seq++ {
				checkedOne(w, c, k, seq, rng, keys, seen)
			}
		}(k)
	}
	wg.Wait()
}

func checkedOne(w *workload, c *actors.Client, k, seq int, rng *rand.Rand, keys int, seen map[string]string) {
	key := fmt.Sprintf("c%d", rng.IntN(keys))
	value := fmt.Sprintf("w%d.%d", k, seq)
	var in sim.Input
	var op []byte
	read := false
	switch n := rng.IntN(10); {
	case n < 3:
		in, op = sim.Input{Kind: sim.OpPut, Key: key, Value: value}, kv.PutOp(key, []byte(value))
	case n < 6:
		in, op, read = sim.Input{Kind: sim.OpGet, Key: key}, kv.GetOp(key), true
	case n < 9:
		// Expect what this client saw last: it swaps if nobody wrote since.
		exp := seen[key]
		in = sim.Input{Kind: sim.OpCAS, Key: key, Value: value, Expected: exp}
		op = kv.CASOp(key, []byte(exp), []byte(value))
	default:
		in, op = sim.Input{Kind: sim.OpPutIfAbsent, Key: key, Value: value}, kv.PutIfAbsentOp(key, []byte(value))
	}
	id := w.history.Invoke(k, in, w.now())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	var res []byte
	var err error
	if read {
		res, err = c.Read(ctx, op)
	} else {
		res, err = c.Execute(ctx, op)
	}
	cancel()
	r := w.complete(id, res, err)
	if r == nil {
		return
	}
	switch {
	case read && r.Found:
		seen[key] = string(r.Value)
	case !read && (in.Kind == sim.OpPut || r.Swapped):
		seen[key] = value
	case !read && r.Found:
		seen[key] = string(r.Value) // a failed swap returns the current value
	}
	if in.Kind == sim.OpCAS {
		casTried.Add(1)
		if r.Swapped {
			casSwapped.Add(1)
		}
	}
}

// finalReads reads every checked key once more, as client id clients, into
// the history: with the history's other ops, porcupine then checks that
// every acknowledged write to them is reflected at the end.
func finalReads(t *testing.T, w *workload, c *actors.Client, clients, keys int) {
	t.Helper()
	for i := 0; i < keys; i++ {
		key := fmt.Sprintf("c%d", i)
		id := w.history.Invoke(clients, sim.Input{Kind: sim.OpGet, Key: key}, w.now())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := c.Read(ctx, kv.GetOp(key))
		cancel()
		require.NoError(t, err, "final read of %s", key)
		r, err := kv.DecodeResult(res)
		require.NoError(t, err)
		w.history.Complete(id, sim.Output{Found: r.Found, Value: string(r.Value)}, w.now())
	}
}

// entryBytes is the encoded size of a log entry for a bulk put, with
// representative numbers: the history's size in the replicas' logs.
func entryBytes(valueBytes int) int {
	e := &messages.Entry{OpNumber: 1 << 20, View: 2, ClientId: 1<<63 + 12345, RequestNumber: 10000,
		Operation: kv.PutOp(bulkKey(12345), bulkValue(12345, 1000, valueBytes)),
		ReplyTo:   &messages.ClientAddress{Address: "127.0.0.1:40000", Id: "$123"}}
	return proto.Size(e)
}

func logStatus(t *testing.T, what string, st []*actors.StatusReply) {
	t.Helper()
	for j, s := range st {
		if s == nil {
			t.Logf("%s: replica %d: no answer", what, j)
			continue
		}
		t.Logf("%s: replica %d: %s view %d, op %d, commit %d, log base %d, checkpoint %d, sessions %d, largest message %d, oversized %d, checkpoints installed %d",
			what, j, s.Status, s.View, s.OpNumber, s.CommitNumber, s.LogBase, s.CheckpointOpNumber, s.Sessions,
			s.LargestMessage, s.Oversized, s.CheckpointsInstalled)
	}
}

// logMemory logs each node's heap in use (the status asked with_memory).
func logMemory(t *testing.T, c *Client) {
	t.Helper()
	var parts []string
	for j, pid := range c.cfg.PeerPIDs() {
		res, err := c.system.Root.RequestFuture(pid, &actors.StatusRequest{WithMemory: true}, 5*time.Second).Result()
		if s, ok := res.(*actors.StatusReply); err == nil && ok {
			parts = append(parts, fmt.Sprintf("replica %d %.1f MiB", j, float64(s.HeapInUse)/(1<<20)))
		}
	}
	t.Logf("heap in use: %s", strings.Join(parts, ", "))
}

// dumpNodeOutput writes every node process's output to a directory that
// outlives the test, and logs where, with each one's last lines.
func dumpNodeOutput(t *testing.T, procs []*nodeProc) {
	dir, err := os.MkdirTemp("", "vsr-history-")
	if err != nil {
		t.Logf("cannot keep the node output: %v", err)
		return
	}
	for k, p := range procs {
		out := p.out.String()
		path := filepath.Join(dir, fmt.Sprintf("process%d-replica%s.log", k, p.cmd.Args[5]))
		_ = os.WriteFile(path, []byte(out), 0o644)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		t.Logf("node process %d (%s), last lines:\n%s", k, path, strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
}
