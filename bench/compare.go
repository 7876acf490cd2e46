package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The default run: a 3-replica vsr group against a 3-node hashicorp/raft
// cluster in four settings (in memory or durable, in this process or as
// processes on loopback), closed-loop writers at each client count, for a
// few rounds that alternate which system goes first.

const (
	vsrName  = "vsr"
	raftName = "hashicorp-raft"
)

// setting is one way of running both systems.
type setting struct {
	name     string
	loopback bool // processes on 127.0.0.1 rather than this process
	durable  bool // every acknowledged write synced to disk
	desc     string
}

var allSettings = []setting{
	{"inproc", false, false, "both in this process, in memory: vsr supervisor.StartGroup without DataDir; raft on InmemTransport with InmemStore and InmemSnapshotStore"},
	{"loopback", true, false, "a process per node on 127.0.0.1, in memory: three `vsr node -memory` and a `vsr bench` client process; three raft node processes on TCPTransport with InmemStore and InmemSnapshotStore, the load inside the leader's"},
	{"durable-inproc", false, true, "both in this process, durable: vsr with DataDir (a FileStore per replica); raft on InmemTransport with raft-boltdb/v2 and a FileSnapshotStore"},
	{"durable-loopback", true, true, "as loopback, durable: `vsr node` on its -data-dir; raft node processes with raft-boltdb/v2 and a FileSnapshotStore"},
}

// measurement is one system at one setting and client count in one round.
type measurement struct {
	opsPerSec               float64
	p50, p99                time.Duration
	allocsPerOp, bytesPerOp float64
	errors, elections       uint64
	// peakRSS is each process's VmHWM, loopback settings only.
	peakRSS []procRSS
	// idleRSS is one node's VmRSS before the load (the middle of the
	// three), loopback settings only.
	idleRSS uint64
	// err is why the measurement failed; the others are then unset.
	err error
}

// compareConfig is what every measurement of a run shares.
type compareConfig struct {
	rounds                 int
	warmup, duration       time.Duration
	clients                []int
	settings               []setting
	keys                   int
	keyNames               []string
	raftStore              string
	raftCache              int
	raftTimeout            time.Duration
	base                   string // the scratch directory
	repo, vsrBin, benchBin string
}

func runCompare(args []string) int { return compare("bench", args) }

// runRaft is the raft subcommand of old: the durable in-process part.
func runRaft(args []string) int {
	return compare("raft", append([]string{"-settings", "durable-inproc", "-duration", "5s"}, args...))
}

func compare(name string, args []string) int {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	cc := &compareConfig{}
	fl.IntVar(&cc.rounds, "rounds", 3, "rounds; each measures both systems at every setting and client count once")
	fl.DurationVar(&cc.duration, "duration", 4*time.Second, "measured time per system, setting and client count, per round")
	fl.DurationVar(&cc.warmup, "warmup", time.Second, "unmeasured load before each measured window")
	clientsFlag := fl.String("clients", "1,64", "closed-loop writer counts, comma-separated")
	settingsFlag := fl.String("settings", settingNames(allSettings), "settings to run, comma-separated")
	fl.IntVar(&cc.keys, "keys", 65536, "distinct keys, written uniformly at random")
	fl.StringVar(&cc.raftStore, "raft-store", "boltdb", "hashicorp/raft's durable log and stable store: boltdb (raft-boltdb/v2) or wal (raft-wal)")
	fl.IntVar(&cc.raftCache, "raft-cache", 0, "if > 0, wrap raft's durable log store in a write-through raft.LogCache of this many entries")
	fl.DurationVar(&cc.raftTimeout, "raft-timeout", 100*time.Millisecond, "hashicorp/raft HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout")
	dirFlag := fl.String("dir", "", "parent of the scratch directory (default: os.TempDir(), or the working directory when that is tmpfs)")
	repoFlag := fl.String("repo", "", "the vsr checkout whose cmd/vsr the loopback settings build (default: the working directory or a parent)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	var err error
	if cc.clients, err = parseInts(*clientsFlag); err != nil || cc.rounds < 1 || cc.duration <= 0 || cc.warmup < 0 ||
		cc.keys < 1 || cc.raftTimeout < 5*time.Millisecond || fl.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: bad -clients, -rounds, -duration, -warmup, -keys or -raft-timeout, or an extra argument\n", name)
		return 2
	}
	if cc.settings, err = parseSettings(*settingsFlag); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	if cc.raftStore != "boltdb" && cc.raftStore != "wal" {
		fmt.Fprintf(os.Stderr, "%s: unknown -raft-store %q (have boltdb, wal)\n", name, cc.raftStore)
		return 2
	}
	cc.keyNames = keyNames(cc.keys)

	parent, note := scratchParent(*dirFlag)
	if cc.base, err = os.MkdirTemp(parent, "vsr-compare-"); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	defer os.RemoveAll(cc.base)
	stopWatching := onInterrupt(func() { os.RemoveAll(cc.base) })
	defer stopWatching()
	defer killAllChildren() // whatever an error path left running
	started := time.Now()

	if slices.ContainsFunc(cc.settings, func(s setting) bool { return s.loopback }) {
		if cc.repo, err = findRepoRoot(*repoFlag); err == nil {
			cc.vsrBin = filepath.Join(cc.base, "vsr")
			err = buildVSR(cc.repo, cc.vsrBin)
		}
		if err == nil {
			cc.benchBin, err = os.Executable()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			return 1
		}
	}
	printHeader(cc, parent, note)

	results := map[resultKey][]measurement{}
	systems := []string{vsrName, raftName}
	total := cc.rounds * len(cc.settings) * len(cc.clients) * len(systems)
	done, failed := 0, 0
	for r := range cc.rounds {
		for _, st := range cc.settings {
			for _, c := range cc.clients {
				for i := range systems {
					sys := systems[(i+r)%len(systems)] // alternate who goes first
					t0 := time.Now()
					m := cc.measure(sys, st, c, r)
					if interrupted() {
						// The interrupt handler is killing the children and
						// exits; this measurement failed for that reason.
						return 130
					}
					done++
					k := resultKey{st.name, c, sys}
					results[k] = append(results[k], m)
					fmt.Fprintf(os.Stderr, "[%2d/%d %5s] round %d %-16s clients %-2d %-14s %s (%.1fs)\n", done, total,
						time.Since(started).Round(time.Second), r+1, st.name, c, sys, progressLine(m), time.Since(t0).Seconds())
					if m.err != nil {
						failed++
					}
				}
			}
		}
	}
	printReport(cc, results, started)
	if failed > 0 {
		return 1
	}
	return 0
}

// resultKey names the measurements of one system, setting and client
// count; its slice holds one per round, in order.
type resultKey struct {
	setting string
	clients int
	system  string
}

// measure runs one measurement, each system starting fresh on a new
// directory.
func (cc *compareConfig) measure(system string, st setting, clients, round int) measurement {
	dir := filepath.Join(cc.base, fmt.Sprintf("%s-%s-c%d-r%d", st.name, system, clients, round))
	p := loadParams{clients: clients, keys: cc.keyNames, warmup: cc.warmup, duration: cc.duration, seed: uint64(round)}
	var m measurement
	var err error
	switch {
	case !st.loopback && system == vsrName:
		m, err = measureInProcess(func(dir string, c int) (*sut, error) {
			if !st.durable {
				dir = "" // in memory
			}
			return startVSR(dir, c)
		}, dir, p)
	case !st.loopback:
		store, cache := "mem", 0
		if st.durable {
			store, cache = cc.raftStore, cc.raftCache
		}
		m, err = measureInProcess(func(dir string, _ int) (*sut, error) {
			return startRaft(dir, store, cache, cc.raftTimeout)
		}, dir, p)
	case system == vsrName:
		m, err = measureVSRLoopback(cc, st.durable, clients, dir)
	default:
		m, err = measureRaftLoopback(cc, st.durable, clients, dir, round)
	}
	if err != nil {
		return measurement{err: err}
	}
	return m
}

func progressLine(m measurement) string {
	if m.err != nil {
		return "FAILED: " + m.err.Error()
	}
	s := fmt.Sprintf("%7.0f ops/s  p50 %s  p99 %s  %.1f allocs/op  %.0f B/op", m.opsPerSec, fmtDur(m.p50), fmtDur(m.p99), m.allocsPerOp, m.bytesPerOp)
	if m.errors > 0 || m.elections > 0 {
		s += fmt.Sprintf("  %d errors  %d elections", m.errors, m.elections)
	}
	return s
}

// warn reports something that did not spoil a measurement.
func warn(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: warning: "+format+"\n", a...)
}

func parseSettings(s string) ([]setting, error) {
	var out []setting
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(allSettings, func(st setting) bool { return st.name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown setting %q (have %s)", name, settingNames(allSettings))
		}
		if !slices.ContainsFunc(out, func(st setting) bool { return st.name == name }) {
			out = append(out, allSettings[i])
		}
	}
	return out, nil
}

func settingNames(ss []setting) string {
	var names []string
	for _, s := range ss {
		names = append(names, s.name)
	}
	return strings.Join(names, ",")
}

// printHeader says what runs.
func printHeader(cc *compareConfig, parent, note string) {
	fmt.Printf("vsr against hashicorp/raft: a 3-replica vsr group and a 3-node raft cluster, side by side\n")
	vsrDesc := "vsr: this checkout"
	if cc.repo != "" {
		vsrDesc += fmt.Sprintf(" (%s at %s; cmd/vsr built from it for the loopback settings)", cc.repo, gitDescribe(cc.repo))
	}
	fmt.Printf("%s, kv state machine, default configuration (checkpoint every 16384 ops)\n", vsrDesc)
	fmt.Printf("hashicorp/raft %s (the approved pin here), raft-boltdb/v2 %s for the durable settings: MaxAppendEntries 64, BatchApplyCh,\n",
		depVersion("github.com/hashicorp/raft"), depVersion("github.com/hashicorp/raft-boltdb/v2"))
	fmt.Printf("  heartbeat/election/leader-lease timeouts %v, snapshots at defaults (threshold 8192, checked every 120-240s), a map[string][]byte FSM\n", cc.raftTimeout)
	if cc.raftStore != "boltdb" || cc.raftCache > 0 {
		fmt.Printf("  durable raft store: %s, LogCache %d entries\n", cc.raftStore, cc.raftCache)
	}
	fmt.Println("settings:")
	for _, st := range cc.settings {
		fmt.Printf("  %-16s %s\n", st.name, st.desc)
	}
	fmt.Printf("workload: closed-loop writers, each with one put outstanding, 16-byte random values to %d random keys; clients %v\n", cc.keys, cc.clients)
	fmt.Printf("%d rounds alternating which system goes first, each system fresh per measurement, %v warm-up then %v measured; GOMAXPROCS %d, %d CPUs\n",
		cc.rounds, cc.warmup, cc.duration, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fsDesc := describeFS(cc.base)
	fmt.Printf("scratch dir %s on %s%s\n", cc.base, fsDesc, note)
	if strings.Contains(fsDesc, "tmpfs") || strings.Contains(fsDesc, "ramfs") {
		fmt.Println("WARNING: this file system is in memory: fsync costs nothing there, and the durable numbers say nothing about a disk")
	}
	fmt.Println()
}
