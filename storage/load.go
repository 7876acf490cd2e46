package storage

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Load reads the checkpoints, replays the WAL and tells a crash from
// corruption, as "Protocol-Aware Recovery for Consensus-Based Storage"
// (Alagappan et al., FAST 2018) asks: a crash can only tear the end of the
// last segment, where the Save that never returned was writing, so a bad
// frame there followed by nothing but zeros (or by the end of the file
// inside the frame) is cut off silently; a bad frame anywhere else, a gap
// in sequence or segment numbers, a missing checkpoint, or a log that does
// not reach what the hard state or a base frame says it held, is damage.
// See replay.go for the per-frame rules. So is a head file that is missing
// or corrupt, or that names a segment newer than the newest one holding a
// frame: the newest segment was lost, which nothing else shows (see
// head.go). The directory has a meta file (Open checked it), so it was
// initialised, and initialisation makes the head before the meta file.
//
// After damage, Load sets the damaged segments (and corrupt checkpoint
// files) aside as *.damaged, and writes what it returns as a new reset
// segment, so that the next Load finds no damage and later Saves extend it.
func (s *FileStore) Load() (State, error) {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return State{}, ErrClosed
	case s.loaded:
		return State{}, errors.New("storage: Load called twice")
	}
	d, err := s.scanDir()
	if err != nil {
		return State{}, err
	}
	head, headBad, err := readHead(s.fs, s.dir)
	if err != nil {
		return State{}, err
	}
	var dmg damage
	cp, err := s.loadCheckpoint(d, &dmg)
	if err != nil {
		return State{}, err
	}
	var ckptOp uint64
	if cp != nil {
		ckptOp = cp.OpNumber
	}
	r := newReplayer(s.fs, s.dir, ckptOp, s.opts.skipChecksums)
	start, err := r.findReset(d.segs)
	if err != nil {
		return State{}, err
	}
	if err := r.run(d.segs[start:]); err != nil {
		return State{}, err
	}
	if headBad == "" {
		headBad = checkHead(s.dir, head, newestWithFrame(d, r))
	}
	if headBad != "" {
		dmg.add(headBad)
	}
	switch c := r.hs.CommitNumber; {
	case r.damage != "":
		dmg.add(r.damage)
	case headBad != "":
		// What a lost newest segment leaves behind (a checkpoint with no
		// segment, a commit number past the log) is the same loss: it is
		// reported once, by the head.
	case len(r.segs) == 0 && cp != nil:
		dmg.add(fmt.Sprintf("checkpoint at op %d but no WAL segment in %s: the hard state is lost", cp.OpNumber, s.dir))
	case c > max(r.ckpt, r.lastOp):
		dmg.add(fmt.Sprintf("the hard state's commit number %d is past both the checkpoint (op %d) and the log's end (op %d)",
			c, r.ckpt, r.lastOp))
	}
	if !dmg.none() {
		// The repaired base records that its replica is recovering: what it
		// lost may include acknowledgements, and a crash before the replica
		// itself says so must not let the next Load pass for intact (or, with
		// nothing left, for a new store).
		r.hs.Recovering = true
	}
	s.hs, s.seq = r.hs, r.seq
	s.bounds = logBounds{lastOp: r.lastOp, ckptOp: r.ckpt}
	if dmg.none() {
		err = s.settle(d, start, r, head)
	} else {
		err = s.repair(d, start, r, head)
	}
	if err != nil {
		return State{}, err
	}
	s.loaded = true
	return State{HardState: r.hs, Checkpoint: cp, Entries: r.ents, Damage: dmg.err()}, nil
}

// newestWithFrame returns the newest segment present that holds a frame,
// or 0 for none: the last one, unless the replay found it empty (a
// rotation that a crash cut short, which settle removes), then the one
// before it.
func newestWithFrame(d *dirScan, r *replayer) uint64 {
	n := len(d.segs)
	if r.cut == 0 {
		n--
	}
	if n <= 0 {
		return 0
	}
	return d.segs[n-1]
}

// dirScan is what a data directory holds, by kind.
type dirScan struct {
	segs    []uint64 // segment numbers, ascending
	ckpts   []uint64 // checkpoint ops, ascending
	damaged []string // *.damaged files from an earlier Load
	badCkpt []uint64 // checkpoint files found corrupt by this Load
}

// scanDir lists the directory and removes temporary files: they were never
// renamed to their names, so nothing acknowledged depends on them.
func (s *FileStore) scanDir() (*dirScan, error) {
	names, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("storage: list %s: %w", s.dir, err)
	}
	d := &dirScan{}
	removed := false
	for _, n := range names {
		if n == metaName || !ours(n) {
			continue
		}
		if strings.HasSuffix(n, tmpSuffix) {
			if err := s.fs.Remove(s.path(n)); err != nil {
				return nil, fmt.Errorf("storage: remove %s: %w", s.path(n), err)
			}
			removed = true
		} else if strings.HasSuffix(n, damagedSuffix) {
			d.damaged = append(d.damaged, n)
		} else if num, ok := parseName(n, segPrefix, segSuffix); ok {
			d.segs = append(d.segs, num)
		} else if op, ok := parseName(n, ckptPrefix, ckptSuffix); ok {
			d.ckpts = append(d.ckpts, op)
		}
	}
	if removed {
		if err := s.fs.SyncDir(s.dir); err != nil {
			return nil, fmt.Errorf("storage: sync directory %s: %w", s.dir, err)
		}
	}
	slices.Sort(d.segs)
	slices.Sort(d.ckpts)
	return d, nil
}

// loadCheckpoint returns the latest intact checkpoint. Every later one that
// is not intact is damage: it was durable, since its name exists only after
// its content was synced.
func (s *FileStore) loadCheckpoint(d *dirScan, dmg *damage) (*Checkpoint, error) {
	for _, op := range slices.Backward(d.ckpts) {
		cp, bad, err := readCheckpointFile(s.fs, s.dir, op)
		if err != nil {
			return nil, err
		}
		if bad == "" {
			return cp, nil
		}
		dmg.add(bad)
		d.badCkpt = append(d.badCkpt, op)
	}
	return nil, nil
}

// settle finishes a Load that found no damage: it removes the segments a
// reset superseded, cuts a torn tail off the last segment (removing the
// segment if nothing intact is left in it) and opens the last segment for
// appending (creating one if none is left, which initialisation and the
// head check make a defensive case only). When the last segment is past
// the one the head names (a crash came between making it and rewriting
// the head), it brings the head up to it, so that a later loss of that
// segment is noticed too.
func (s *FileStore) settle(d *dirScan, start int, r *replayer, head uint64) error {
	s.ckpts = d.ckpts
	changed := false
	for _, num := range d.segs[:start] {
		if err := s.remove(segName(num)); err != nil {
			return err
		}
		changed = true
	}
	s.segs = r.segs
	if r.cut >= 0 {
		last := d.segs[len(d.segs)-1]
		name := s.path(segName(last))
		if r.cut == 0 {
			if err := s.remove(segName(last)); err != nil {
				return err
			}
			changed = true
		} else if err := s.truncate(name, r.cut); err != nil {
			return err
		}
	}
	if changed {
		if err := s.fs.SyncDir(s.dir); err != nil {
			return fmt.Errorf("storage: sync directory %s: %w", s.dir, err)
		}
	}
	if len(s.segs) == 0 {
		num := uint64(1)
		if len(d.segs) > 0 {
			num = d.segs[len(d.segs)-1] + 1
		}
		f, err := s.createSegment(num, s.seq+1, false, nil)
		if err != nil {
			return err
		}
		s.seq++
		s.segs = []segment{{num: num, maxOp: s.bounds.lastOp}}
		if err := s.setActive(f); err != nil {
			return err
		}
	} else {
		name := s.path(segName(s.segs[len(s.segs)-1].num))
		f, err := s.fs.OpenAppend(name)
		if err != nil {
			return fmt.Errorf("storage: open %s: %w", name, err)
		}
		if err := s.setActive(f); err != nil {
			return err
		}
	}
	last := s.segs[len(s.segs)-1].num
	if last == head {
		return nil
	}
	// The head may name the segment only once it is durable, content and
	// name: what Load read of it may be bytes whose sync failed, still in
	// the page cache.
	if err := s.active.Sync(); err != nil {
		return fmt.Errorf("storage: sync %s: %w", s.path(segName(last)), err)
	}
	if err := syncDir(s.fs, s.dir); err != nil {
		return err
	}
	return writeHead(s.fs, s.dir, last)
}

// repair makes the state a damaged Load returns the new base: it writes it
// as a reset segment numbered after every segment present and after the
// head's (durable before anything else changes, so a crash from here on
// finds it and ignores the older segments) and makes the head name it,
// then sets aside the damaged segments and corrupt checkpoint files as
// *.damaged, replacing those of an earlier repair so they do not pile up,
// and removes the segments the reset supersedes. Numbering the reset past
// the head's segment means that a crash before the head is rewritten
// leaves a newest segment past the head's, which is no damage, unless the
// head itself was what was damaged. A corrupt head is not set aside: it
// holds nothing but a number, which the new head replaces.
func (s *FileStore) repair(d *dirScan, start int, r *replayer, head uint64) error {
	num := head + 1
	if len(d.segs) > 0 {
		num = max(num, d.segs[len(d.segs)-1]+1)
	}
	f, err := s.createSegment(num, s.seq+1, true, r.ents)
	if err != nil {
		return err
	}
	if err := writeHead(s.fs, s.dir, num); err != nil {
		f.Close()
		return err
	}
	if err := s.setActive(f); err != nil {
		return err
	}
	s.seq++
	s.segs = []segment{{num: num, maxOp: s.bounds.lastOp}}
	for _, n := range d.damaged {
		if err := s.remove(n); err != nil {
			return err
		}
	}
	var aside []string
	if r.damageAt >= 0 {
		for _, n := range d.segs[start+r.damageAt:] {
			aside = append(aside, segName(n))
		}
	}
	for _, op := range d.badCkpt {
		aside = append(aside, ckptName(op))
	}
	for _, n := range aside {
		if err := s.fs.Rename(s.path(n), s.path(n+damagedSuffix)); err != nil {
			return fmt.Errorf("storage: rename %s aside: %w", s.path(n), err)
		}
	}
	for _, n := range d.segs {
		if !slices.Contains(aside, segName(n)) {
			if err := s.remove(segName(n)); err != nil {
				return err
			}
		}
	}
	s.ckpts = slices.DeleteFunc(d.ckpts, func(op uint64) bool { return slices.Contains(d.badCkpt, op) })
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("storage: sync directory %s: %w", s.dir, err)
	}
	return nil
}

func (s *FileStore) remove(name string) error {
	if err := s.fs.Remove(s.path(name)); err != nil {
		return fmt.Errorf("storage: remove %s: %w", s.path(name), err)
	}
	return nil
}

// truncate cuts name to size, durably.
func (s *FileStore) truncate(name string, size int64) error {
	f, err := s.fs.OpenAppend(name)
	if err != nil {
		return fmt.Errorf("storage: open %s: %w", name, err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("storage: truncate %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("storage: sync %s: %w", name, err)
	}
	return nil
}

// setActive makes f, the last segment, the one Saves append to.
func (s *FileStore) setActive(f File) error {
	size, err := f.Size()
	if err != nil {
		f.Close()
		return fmt.Errorf("storage: size of the active segment: %w", err)
	}
	s.active, s.size = f, size
	return nil
}

// damage collects what Load found wrong.
type damage struct{ found []string }

func (d *damage) add(what string) { d.found = append(d.found, what) }
func (d *damage) none() bool      { return len(d.found) == 0 }

func (d *damage) err() error {
	if d.none() {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrDamaged, strings.Join(d.found, "; "))
}
