package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

func waitPrimary(t historyTarget, within time.Duration, not int) int {
	deadline := time.Now().Add(within)
	for {
		if p := primaryOf(t.figures(false, false, 2*time.Second)); p >= 0 && p != not {
			return p
		}
		if time.Now().After(deadline) {
			return -1
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failover stops counting the load's writes, kills the primary, times the
// first write acknowledged after the kill (a probe sent at once, retried by
// its client until the new primary answers), restarts the killed replica and
// waits until it is normal with a commit number that has caught up with the
// primary's, then counts the load again. The load keeps running throughout.
func failover(t historyTarget, l *historyLoad, at int64, o historyOptions) (failoverResult, error) {
	l.counting.Store(false)
	defer l.counting.Store(true)
	fo := failoverResult{at: at}
	p := waitPrimary(t, 10*time.Second, -1)
	if p < 0 {
		return fo, errors.New("no primary to kill")
	}
	fo.killed = p
	if err := t.kill(p); err != nil {
		return fo, err
	}
	killed := time.Now()
	l.firstAfter.Store(0)
	l.killedAt.Store(killed.UnixNano())
	// Meanwhile, poll for the new primary: when the view change is done,
	// as the replicas report it.
	viewChange := make(chan time.Duration, 1)
	go func() {
		for time.Since(killed) < time.Minute {
			if q := primaryOf(t.figures(false, false, 25*time.Millisecond)); q >= 0 && q != p {
				viewChange <- time.Since(killed)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		viewChange <- 0
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err := t.probe().Execute(ctx, kv.PutOp("history-failover-probe", []byte(fmt.Sprint(at))))
	cancel()
	fo.failover = time.Since(killed)
	if err != nil {
		fo.probeErr = err
		return fo, fmt.Errorf("the probe write after the kill failed after %s: %w", fo.failover, err)
	}
	if fa := l.firstAfter.Load(); fa != 0 {
		fo.firstLoadWrite = time.Duration(fa - killed.UnixNano())
	}
	l.killedAt.Store(0)
	fo.viewChange = <-viewChange
	fo.newPrimary = waitPrimary(t, 10*time.Second, p)

	if err := t.restart(p); err != nil {
		return fo, err
	}
	restarted := time.Now()
	deadline := restarted.Add(o.recoverTimeout)
	var primaryCommit uint64
	var last string
	for time.Now().Before(deadline) {
		st := t.figures(false, false, 2*time.Second)
		s := st[p]
		if s.Up && fo.reachable == 0 {
			fo.reachable = time.Since(restarted)
		}
		if o.traceRecovery {
			mine := fmt.Sprintf("r%d %s op %d commit %d log base %d checkpoint %d installed %d",
				p, statusWord(s), s.Op, s.Commit, s.LogBase, s.Checkpoint, s.Installed)
			if mine != last {
				last = mine
				if q := primaryOf(st); q >= 0 {
					mine += fmt.Sprintf(" | primary r%d commit %d checkpoint %d", q, st[q].Commit, st[q].Checkpoint)
				}
				fo.trace = append(fo.trace, fmt.Sprintf("+%s %s", time.Since(restarted).Round(time.Millisecond), mine))
			}
		}
		if s.Up && s.Normal && primaryCommit > 0 && s.Commit >= primaryCommit {
			fo.recovery, fo.recovered, fo.installed, fo.st = time.Since(restarted), true, s.Installed, s
			if lt, ok := t.(*loopbackTarget); ok {
				fo.timeline = lt.timeline(p)
			}
			return fo, nil
		}
		if q := primaryOf(st); q >= 0 && q != p {
			primaryCommit = st[q].Commit
		}
		time.Sleep(20 * time.Millisecond)
	}
	fo.recovery = time.Since(restarted)
	return fo, nil
}

func formatFailover(mode string, fo failoverResult) string {
	load := "no load write sent after the kill was acknowledged before the probe"
	if fo.firstLoadWrite > 0 {
		load = fmt.Sprintf("the first load write sent after the kill: %s", fo.firstLoadWrite.Round(time.Millisecond))
	}
	s := fmt.Sprintf("%s: failover at %d: killed primary r%d; first write acknowledged %s after the kill (new primary r%d, seen normal by a status poll at %s; %s)\n",
		mode, fo.at, fo.killed, fo.failover.Round(time.Millisecond), fo.newPrimary, fo.viewChange.Round(time.Millisecond), load)
	if !fo.recovered {
		return s + fmt.Sprintf("%s: restarted r%d: NOT caught up after %s", mode, fo.killed, fo.recovery.Round(time.Millisecond))
	}
	how := "recovered from the log alone (checkpoints_installed = 0)"
	if fo.installed > 0 {
		how = fmt.Sprintf("recovered through chunked checkpoint transfer (checkpoints_installed = %d)", fo.installed)
	}
	s += fmt.Sprintf("%s: restarted r%d: normal and caught up %s after its restart (it first answered a status poll at %s), commit %d, log base %d, checkpoint %d; %s",
		mode, fo.killed, fo.recovery.Round(time.Millisecond), fo.reachable.Round(time.Millisecond), fo.st.Commit, fo.st.LogBase, fo.st.Checkpoint, how)
	for _, line := range fo.trace {
		s += fmt.Sprintf("\n%s: recovery trace: %s", mode, line)
	}
	if fo.timeline != "" {
		s += fmt.Sprintf("\n%s: restarted node's own log: %s", mode, fo.timeline)
	}
	return s
}

// converge waits, with the load stopped, for every replica to be normal in
// one view with one commit number, then compares their state digests.
func converge(t historyTarget, within time.Duration) ([]replicaFigures, bool) {
	deadline := time.Now().Add(within)
	for {
		st := t.figures(false, false, 2*time.Second)
		same := true
		for _, s := range st {
			same = same && s.Up && s.Normal && s.View == st[0].View && s.Commit == st[0].Commit
		}
		if same {
			st = t.figures(false, true, 5*time.Second)
			for _, s := range st {
				same = same && s.Up && s.Commit == st[0].Commit && len(s.Digest) > 0 && bytes.Equal(s.Digest, st[0].Digest)
			}
			if same || time.Now().After(deadline) {
				return st, same
			}
		}
		if time.Now().After(deadline) {
			return st, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ratio(a, b float64) string {
	if a <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", b/a)
}

func printHistorySummary(say func(string, ...any), mode string, rows []historyRow, fos []failoverResult, heapCols int) {
	if len(rows) == 0 {
		return
	}
	first, last := rows[0], rows[len(rows)-1]
	say("%s: summary: %-34s %14s %14s %8s", mode, "", fmt.Sprintf("at %d", first.ops), fmt.Sprintf("at %d", last.ops), "ratio")
	for i := 0; i < heapCols; i++ {
		name := "heap in use (process)"
		if heapCols > 1 {
			name = fmt.Sprintf("heap in use r%d", i)
		}
		a, b := first.st[i].Heap, last.st[i].Heap
		say("%s: summary: %-34s %10.1f MiB %10.1f MiB %8s", mode, name, mib(a), mib(b), ratio(float64(a), float64(b)))
	}
	for i := range first.st {
		a, b := first.st[i].Largest, last.st[i].Largest
		say("%s: summary: %-34s %12d B %12d B %8s", mode, fmt.Sprintf("largest message sent r%d", i), a, b, ratio(float64(a), float64(b)))
	}
	maxOf := func(r historyRow, f func(replicaFigures) float64) (m float64) {
		for _, s := range r.st {
			m = max(m, f(s))
		}
		return m
	}
	heapOf := func(s replicaFigures) float64 { return float64(s.Heap) }
	largestOf := func(s replicaFigures) float64 { return float64(s.Largest) }
	windowOf := func(s replicaFigures) float64 { return float64(s.Commit - min(s.Commit, s.LogBase)) }
	if heapCols > 1 {
		a, b := maxOf(first, heapOf), maxOf(last, heapOf)
		say("%s: summary: %-34s %10.1f MiB %10.1f MiB %8s", mode, "heap in use, largest replica", a/(1<<20), b/(1<<20), ratio(a, b))
	}
	a, b := maxOf(first, largestOf), maxOf(last, largestOf)
	say("%s: summary: %-34s %12.0f B %12.0f B %8s   (bound: MaxMessageBytes %d B)", mode, "largest message, any replica", a, b, ratio(a, b), vsr.DefaultMaxMessageBytes)
	// A checkpoint transfer sends chunks of nearly MaxMessageBytes; compare
	// like with like from the first report after the first one.
	for _, r := range rows[1:] {
		if r.afterKills > 0 {
			a := maxOf(r, largestOf)
			say("%s: summary: %-34s %12.0f B %12.0f B %8s   (from the first report after a failover, at %d)", mode,
				"largest message since a transfer", a, b, ratio(a, b), r.ops)
			break
		}
	}
	a, b = maxOf(first, windowOf), maxOf(last, windowOf)
	say("%s: summary: %-34s %14.0f %14.0f %8s   (bound: about TrailingOps + CheckpointInterval + PipelineMax)", mode,
		"log window (commit - log base), max", a, b, ratio(a, b))
	if len(fos) == 0 {
		return
	}
	var at, fail, rec, inst []string
	for _, fo := range fos {
		at = append(at, fmt.Sprintf("%14s", fmt.Sprintf("at %d", fo.at)))
		fail = append(fail, fmt.Sprintf("%14s", fo.failover.Round(time.Millisecond)))
		rec = append(rec, fmt.Sprintf("%14s", fo.recovery.Round(time.Millisecond)))
		inst = append(inst, fmt.Sprintf("%14d", fo.installed))
	}
	r1, r2 := "", ""
	if len(fos) > 1 {
		a, b := fos[0], fos[len(fos)-1]
		r1 = fmt.Sprintf(" %8s", ratio(a.failover.Seconds(), b.failover.Seconds()))
		r2 = fmt.Sprintf(" %8s", ratio(a.recovery.Seconds(), b.recovery.Seconds()))
	}
	say("%s: summary: %-34s %s %8s", mode, "failover", strings.Join(at, " "), map[bool]string{true: "ratio"}[len(fos) > 1])
	say("%s: summary: %-34s %s%s", mode, "kill -> first write acknowledged", strings.Join(fail, " "), r1)
	say("%s: summary: %-34s %s%s", mode, "restart -> caught up", strings.Join(rec, " "), r2)
	say("%s: summary: %-34s %s", mode, "checkpoints installed by it", strings.Join(inst, " "))
}
