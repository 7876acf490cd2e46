package main

import (
	"bufio"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// runStorage measures fsync'd append throughput with group commit: W
// writers, each with one operation outstanding, feed one commit loop that
// takes G operations at a time and makes them durable with one sync. The
// engines run in turn, in a rotating order, for several rounds, so that
// machine noise falls on all of them.
func runStorage(args []string) int {
	fl := flag.NewFlagSet("storage", flag.ContinueOnError)
	rounds := fl.Int("rounds", 3, "rounds; each runs every engine at every group size once")
	duration := fl.Duration("duration", 2*time.Second, "time per engine per group size per round")
	groupsFlag := fl.String("groups", "1,8,64", "group sizes: operations per sync, comma-separated")
	writers := fl.Int("writers", 0, "concurrent writers, each with one operation outstanding (0: as many as the group size; at least the group size)")
	dirFlag := fl.String("dir", "", "parent of the scratch directory (default: os.TempDir(), or the working directory when that is tmpfs)")
	only := fl.String("engines", "", "comma-separated engines to run (default all: "+engineNames()+")")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	groups, err := parseInts(*groupsFlag)
	if err != nil || *rounds < 1 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "storage: bad -groups, -rounds or -duration")
		return 2
	}
	defs := engines
	if *only != "" {
		defs = nil
		for _, name := range strings.Split(*only, ",") {
			i := slices.IndexFunc(engines, func(d engineDef) bool { return d.name == strings.TrimSpace(name) })
			if i < 0 {
				fmt.Fprintf(os.Stderr, "storage: unknown engine %q (have %s)\n", name, engineNames())
				return 2
			}
			defs = append(defs, engines[i])
		}
	}

	parent, note := scratchParent(*dirFlag)
	base, err := os.MkdirTemp(parent, "vsr-storagebench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "storage:", err)
		return 1
	}
	defer os.RemoveAll(base)
	fsDesc := describeFS(base)
	fmt.Printf("scratch dir %s on %s%s\n", base, fsDesc, note)
	if strings.Contains(fsDesc, "tmpfs") || strings.Contains(fsDesc, "ramfs") {
		fmt.Println("WARNING: this file system is in memory: fsync costs nothing there, and the numbers say nothing about a disk")
	}
	fmt.Printf("%d rounds x %d engines x groups %v, %v each; writers: %s\n\n",
		*rounds, len(defs), groups, *duration, writersDesc(*writers))

	type key struct {
		engine string
		group  int
	}
	results := map[key]*result{}
	for r := range *rounds {
		for _, g := range groups {
			w := max(*writers, g)
			for i := range defs {
				def := defs[(i+r)%len(defs)] // rotate who goes first
				dir := filepath.Join(base, fmt.Sprintf("%s-g%d-r%d", def.name, g, r))
				res, err := runOne(def, dir, g, w, *duration)
				if err != nil {
					fmt.Fprintf(os.Stderr, "storage: %s, group %d: %v\n", def.name, g, err)
					return 1
				}
				k := key{def.name, g}
				if results[k] == nil {
					results[k] = &result{}
				}
				results[k].add(res)
			}
		}
		fmt.Fprintf(os.Stderr, "round %d/%d done\n", r+1, *rounds)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "group\tengine\tops/s\tsyncs/s\tp50 commit\tp99 commit\tdisk B/op\twritten B/op\tround spread\t")
	var summary []string
	for _, g := range groups {
		best, bestRate := "", 0.0
		for _, def := range defs {
			res := results[key{def.name, g}]
			rate := res.opsPerSec()
			if rate > bestRate {
				best, bestRate = def.name, rate
			}
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f\t%s\t%s\t%.0f\t%s\t%s\t\n", g, def.name, rate,
				float64(res.syncs)/res.elapsed.Seconds(),
				fmtDur(res.percentile(0.50)), fmtDur(res.percentile(0.99)),
				float64(res.diskBytes)/float64(res.ops), res.writtenPerOp(), res.spread())
		}
		fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t")
		ratio := "ours not run"
		if ours := results[key{oursName, g}]; ours != nil {
			ratio = fmt.Sprintf("%.2fx ours", bestRate/ours.opsPerSec())
		}
		summary = append(summary, fmt.Sprintf("G=%d %s (%s)", g, best, ratio))
	}
	tw.Flush()
	fmt.Println("fastest: " + strings.Join(summary, ", "))
	return 0
}

// result accumulates the runs of one engine at one group size.
type result struct {
	ops, syncs   int
	elapsed      time.Duration
	lat          []time.Duration // one per group commit
	diskBytes    int64           // allocated after close, summed over runs
	written      int64           // bytes the process sent to storage; -1 unknown
	roundsPerSec []float64
}

func (r *result) add(o *result) {
	r.ops += o.ops
	r.syncs += o.syncs
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	r.diskBytes += o.diskBytes
	if r.written >= 0 && o.written >= 0 {
		r.written += o.written
	} else {
		r.written = -1
	}
	r.roundsPerSec = append(r.roundsPerSec, float64(o.ops)/o.elapsed.Seconds())
}

func (r *result) opsPerSec() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func (r *result) percentile(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func (r *result) writtenPerOp() string {
	if r.written < 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(r.written)/float64(r.ops), 'f', 0, 64)
}

// spread is (max-min)/mean of the per-round throughput: how much the
// rounds disagree.
func (r *result) spread() string {
	if len(r.roundsPerSec) < 2 {
		return "-"
	}
	var sum float64
	for _, v := range r.roundsPerSec {
		sum += v
	}
	mean := sum / float64(len(r.roundsPerSec))
	return fmt.Sprintf("%.0f%%", 100*(slices.Max(r.roundsPerSec)-slices.Min(r.roundsPerSec))/mean)
}

// runOne opens def on a new dir, runs w writers and one commit loop taking
// g operations per sync for d, closes the engine and measures what it left.
func runOne(def engineDef, dir string, g, w int, d time.Duration) (*result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	eng, err := def.open(dir)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	written0 := processWriteBytes()

	ops := make(chan *op, w)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range w {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			for req := uint64(1); ; req++ {
				o := &op{clientID: uint64(i + 1), request: req, value: make([]byte, 16), done: make(chan error, 1)}
				for j := 0; j < 16; j += 8 {
					v := rng.Uint64()
					for k := range 8 {
						o.value[j+k] = byte(v >> (8 * k))
					}
				}
				select {
				case ops <- o:
				case <-stop:
					return
				}
				select {
				case <-o.done:
				case <-stop:
					return
				}
			}
		})
	}

	res := &result{lat: make([]time.Duration, 0, 4096)}
	group := make([]*op, 0, g)
	next := uint64(1)
	start := time.Now()
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		group = group[:0]
		for len(group) < g {
			group = append(group, <-ops)
		}
		t0 := time.Now()
		err = eng.commit(next, group)
		res.lat = append(res.lat, time.Since(t0))
		if err != nil {
			break
		}
		next += uint64(g)
		res.ops += g
		res.syncs++
		for _, o := range group {
			o.done <- nil
		}
	}
	res.elapsed = time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		eng.close()
		return nil, fmt.Errorf("commit: %w", err)
	}
	if err := eng.close(); err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	if written1 := processWriteBytes(); written0 >= 0 && written1 >= 0 {
		res.written = written1 - written0
	} else {
		res.written = -1
	}
	res.diskBytes = allocatedBytes(dir)
	return res, nil
}

// processWriteBytes is write_bytes of /proc/self/io: the bytes this process
// caused to be sent to the storage layer (a page dirtied again after a sync
// counts again), or -1.
func processWriteBytes() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// allocatedBytes is what du would say of dir: the blocks its files hold,
// preallocated ones included.
func allocatedBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// scratchParent picks where the scratch directory goes: -dir if given,
// else os.TempDir() unless that is in memory, else the working directory.
func scratchParent(flagDir string) (dir, note string) {
	if flagDir != "" {
		return flagDir, " (-dir)"
	}
	tmp := os.TempDir()
	if desc := describeFS(tmp); !strings.Contains(desc, "tmpfs") && !strings.Contains(desc, "ramfs") {
		return tmp, ""
	}
	wd, err := os.Getwd()
	if err != nil {
		return tmp, ""
	}
	return wd, fmt.Sprintf(" (%s is in memory, so the working directory is used)", tmp)
}

// describeFS names the file system holding path: the mount of
// /proc/self/mounts with the longest mount point that contains it.
func describeFS(path string) string {
	abs, err := filepath.Abs(path)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	f, ferr := os.Open("/proc/self/mounts")
	if err != nil || ferr != nil {
		return "an unknown file system"
	}
	defer f.Close()
	best, desc := -1, "an unknown file system"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		mp := strings.ReplaceAll(fields[1], `\040`, " ")
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, desc = len(mp), fmt.Sprintf("%s (%s mounted at %s)", fields[2], fields[0], mp)
		}
	}
	return desc
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func engineNames() string {
	names := make([]string, len(engines))
	for i, d := range engines {
		names[i] = d.name
	}
	return strings.Join(names, ",")
}

func writersDesc(w int) string {
	if w == 0 {
		return "one per operation of a group"
	}
	return fmt.Sprintf("%d (at least the group size)", w)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
}
