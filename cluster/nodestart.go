package cluster

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

// How a node starts its replica: as a founding member of a new group, as a
// new member joining a reconfiguration, as a member that lost its disk, or
// back from what its data directory holds (nodefile.go).

// startState is what StartNode needs to start the replica.
type startState struct {
	core      vsr.Config // History is applied by the caller
	openStore func() (storage.Store, error)
	record    *nodeRecord
	// fresh says the record is to be written once the replica started
	// (Memory only: with a disk it is written before the store is made).
	fresh bool
}

// startState reads the data directory and decides how the replica starts.
func (cfg NodeConfig) startState() (startState, error) {
	self := cfg.Replicas[cfg.Index]
	rec, err := readNodeRecord(cfg.DataDir)
	if err != nil {
		return startState{}, err
	}
	if rec != nil {
		if err := rec.check(cfg.DataDir, cfg.ClusterID, self); err != nil {
			return startState{}, err
		}
	}
	if cfg.Memory {
		return cfg.memoryStart(rec)
	}
	return cfg.diskStart(rec)
}

// newRecord is the record of a node started now with cfg.
func (cfg NodeConfig) newRecord() *nodeRecord {
	r := &nodeRecord{ClusterID: cfg.ClusterID, Self: cfg.Replicas[cfg.Index], Members: slices.Clone(cfg.Replicas),
		Joining: cfg.Join, TookPart: !cfg.Join}
	if cfg.Recover {
		r.Epoch, r.Current = cfg.Epoch, slices.Clone(cfg.Replicas)
	}
	return r
}

// coreOf is the replica's configuration as rec says it was first started.
func coreOf(clusterID uint64, rec *nodeRecord) vsr.Config {
	return vsr.Config{ClusterID: clusterID, ReplicaCount: len(rec.Members), ReplicaIndex: rec.index(),
		Members: slices.Clone(rec.Members), Joining: rec.Joining, Reconfigurable: true}
}

// checkFresh refuses to found a new group with the configuration of a
// later epoch: its nodes are members of a running group.
func (cfg NodeConfig) checkFresh() error {
	if cfg.Epoch > 0 && !cfg.Join && !cfg.Recover {
		return fmt.Errorf("%w: the configuration is of epoch %d, so the group is running: start a new member with -join, "+
			"or a member that lost its data directory with -recover", ErrConfig, cfg.Epoch)
	}
	return nil
}

// memoryStart: a node without a disk keeps only its record, so that a
// restarted node knows it must recover (VR's rule: it never answers as if it
// still had the state it lost), and in which epoch.
func (cfg NodeConfig) memoryStart(rec *nodeRecord) (startState, error) {
	legacy, err := joinedBefore(cfg.DataDir, cfg.ClusterID)
	if err != nil {
		return startState{}, err
	}
	switch {
	case rec != nil:
		core := coreOf(cfg.ClusterID, rec)
		if rec.TookPart {
			// It may have voted: it recovers, in the latest configuration
			// it took part in.
			core.Joining, core.Recovering = false, true
			if j := slices.Index(rec.Current, rec.Self); j >= 0 {
				core.Members, core.ReplicaCount, core.ReplicaIndex, core.Epoch = slices.Clone(rec.Current), len(rec.Current), j, rec.Epoch
			}
		}
		return startState{core: core, record: rec}, nil
	case legacy:
		// A directory of a build before the record: the marker says it
		// took part.
		rec := cfg.newRecord()
		rec.Joining, rec.TookPart = false, true
		core := coreOf(cfg.ClusterID, rec)
		core.Recovering = true
		return startState{core: core, record: rec, fresh: true}, nil
	}
	if err := cfg.checkFresh(); err != nil {
		return startState{}, err
	}
	rec = cfg.newRecord()
	return startState{core: cfg.freshCore(rec), record: rec, fresh: true}, nil
}

// freshCore is the configuration of a node's first start.
func (cfg NodeConfig) freshCore(rec *nodeRecord) vsr.Config {
	core := coreOf(cfg.ClusterID, rec)
	if cfg.Recover {
		core.Recovering, core.Epoch = true, cfg.Epoch
	}
	return core
}

// diskStart: the store holds the replica's state, and vsr.Restart replays it
// from the configuration the record names.
func (cfg NodeConfig) diskStart(rec *nodeRecord) (startState, error) {
	core := vsr.Config{}
	switch {
	case rec != nil:
		core = coreOf(cfg.ClusterID, rec)
	case hasStore(cfg.DataDir):
		// A directory of a build before the record: its replica was
		// started with this configuration, as a founding member.
		rec = cfg.newRecord()
		rec.Joining = false
		core = coreOf(cfg.ClusterID, rec)
		if err := rec.write(cfg.DataDir); err != nil {
			return startState{}, fmt.Errorf("vsr: writing %s: %w", cfg.DataDir, err)
		}
	default:
		if err := cfg.checkFresh(); err != nil {
			return startState{}, err
		}
		// The record goes first: a crash before the store exists then
		// leaves a directory that starts the same way again.
		rec = cfg.newRecord()
		core = cfg.freshCore(rec)
		if err := rec.write(cfg.DataDir); err != nil {
			return startState{}, fmt.Errorf("vsr: writing %s: %w", cfg.DataDir, err)
		}
	}
	id := storage.Identity{ClusterID: cfg.ClusterID, ReplicaIndex: rec.index(), ReplicaCount: len(rec.Members)}
	open, err := checkDataDir(cfg.DataDir, id)
	if err != nil {
		return startState{}, err
	}
	return startState{core: core, openStore: open, record: rec}, nil
}

// hasStore reports whether dir holds an initialised store.
func hasStore(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "vsr.meta"))
	return err == nil
}

// onEvent passes the replica's events on, and with Memory keeps the record
// of the configuration the replica takes part in.
func (n *Node) onEvent(e actors.Event) {
	if n.cfg.Memory && e.Failed == nil && !e.Left &&
		(e.Status == vsr.StatusNormal || e.Status == vsr.StatusViewChange) {
		n.noteTookPart(e)
	}
	if n.cfg.OnEvent != nil {
		n.cfg.OnEvent(e)
	}
}

// noteTookPart records, once per epoch, that the replica took part in e's
// configuration.
func (n *Node) noteTookPart(e actors.Event) {
	n.recMu.Lock()
	defer n.recMu.Unlock()
	r := n.record
	if r == nil || (r.TookPart && e.Epoch <= r.Epoch && r.Current != nil) {
		return
	}
	next := *r
	next.TookPart, next.Epoch, next.Current = true, e.Epoch, slices.Clone(e.Members)
	if err := next.write(n.cfg.DataDir); err != nil {
		n.logger().Error("vsr: cannot record the node's configuration", "dir", n.cfg.DataDir, "err", err)
		return
	}
	n.record = &next
}

func (n *Node) logger() *slog.Logger {
	if n.cfg.Logger != nil {
		return n.cfg.Logger
	}
	return slog.New(slog.DiscardHandler)
}
