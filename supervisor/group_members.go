package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

// Changing a group's members (VR Revisited section 7, docs/reconfiguration.md):
// the group starts the replicas that join, asks the group to reconfigure
// through a client like any operator, and the replicas a reconfiguration
// removes stop on their own once the new configuration holds the state.

// configuration is a group configuration that a replica reported.
type configuration struct {
	epoch   uint64
	members []string
}

// noteConfiguration keeps members as the newest configuration if epoch is
// newer than the one kept, and wakes whoever waits for a change. Replicas
// report only changes, so the lock is off every hot path.
func (g *Group) noteConfiguration(epoch uint64, members []string) {
	g.configMu.Lock()
	defer g.configMu.Unlock()
	if old := g.latest.Load(); members == nil || (old != nil && old.epoch >= epoch) {
		return
	}
	g.latest.Store(&configuration{epoch: epoch, members: slices.Clone(members)})
	if g.configChanged != nil {
		close(g.configChanged)
		g.configChanged = nil
	}
}

// awaitConfiguration waits until a replica has reported names as the
// group's configuration, or ctx ends.
func (g *Group) awaitConfiguration(ctx context.Context, names []string) {
	for {
		g.configMu.Lock()
		if c := g.latest.Load(); c != nil && slices.Equal(c.members, names) {
			g.configMu.Unlock()
			return
		}
		if g.configChanged == nil {
			g.configChanged = make(chan struct{})
		}
		changed := g.configChanged
		g.configMu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// configuration is the newest configuration a replica reported, or the
// first one.
func (g *Group) configuration() (uint64, []string) {
	if c := g.latest.Load(); c != nil {
		return c.epoch, slices.Clone(c.members)
	}
	return 0, memberNames(g.cfg.Replicas)
}

// Members returns the newest configuration the group's replicas have
// reported: its epoch and its members' numbers, in the configuration's
// order. It asks no replica; right after a Reconfigure returns, a replica
// of the new configuration may not have reported it yet.
func (g *Group) Members() (epoch uint64, replicas []int) {
	epoch, names := g.configuration()
	for _, name := range names {
		i, _ := replicaNumber(name)
		replicas = append(replicas, i)
	}
	return epoch, replicas
}

// Reconfigure changes the group's members to replicas, by number, in the
// order of the new configuration. A number the group has not used yet is a
// new replica: new numbers must follow on from the highest the group has
// hosted (see Replicas), and Reconfigure starts those replicas to join
// before it asks. The group refuses, with an error wrapping
// actors.ErrRejected that says why and with nothing changed, a
// configuration with an even count, the same configuration, one with a
// majority of new replicas, or one asked for while another change is under
// way; Reconfigure then stops the replicas it started. Members the change
// removes stop once a quorum of the new configuration holds the state (an
// Event with Left). A context that ends first leaves the outcome unknown
// and the new replicas running: asking again with the same replicas is
// safe. When it returns nil, Members reports the new configuration (unless
// no replica reported it before ctx ended, or within 10 s without a
// deadline: the change has committed all the same).
func (g *Group) Reconfigure(ctx context.Context, replicas []int) error {
	g.reconfiguring.Lock()
	defer g.reconfiguring.Unlock()
	return g.reconfigure(ctx, replicas)
}

// reconfigure is Reconfigure, under g.reconfiguring. On success it returns
// once a replica has reported the new configuration (the primary does as
// it executes the change), so that Members and Replace see it; it waits at
// most until ctx ends, or reportWait without a deadline, since the change
// itself has committed.
func (g *Group) reconfigure(ctx context.Context, replicas []int) error {
	if g.isStopped() {
		return ErrStopped
	}
	names, fresh, err := g.plan(replicas)
	if err != nil {
		return err
	}
	for _, i := range fresh {
		if err := g.join(i, names); err != nil {
			return errors.Join(err, g.forget(fresh))
		}
	}
	c, err := g.NewClient(1)
	if err != nil {
		return errors.Join(err, g.forget(fresh))
	}
	defer c.Close()
	if err := c.Reconfigure(ctx, names); err != nil {
		if errors.Is(err, actors.ErrRejected) {
			return errors.Join(err, g.forget(fresh))
		}
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, reportWait)
		defer cancel()
	}
	g.awaitConfiguration(ctx, names)
	return nil
}

// reportWait bounds how long a successful Reconfigure without a deadline
// waits for a replica to report the new configuration.
const reportWait = 10 * time.Second

// Replace replaces member i with a new replica, in i's place in the
// configuration, and returns the new replica's number. It is Reconfigure
// with one number changed, and fails as Reconfigure does.
func (g *Group) Replace(ctx context.Context, i int) (int, error) {
	g.reconfiguring.Lock()
	defer g.reconfiguring.Unlock()
	_, members := g.Members()
	at := slices.Index(members, i)
	if at < 0 {
		return -1, fmt.Errorf("%w: replica %d is not a member", vsr.ErrMembers, i)
	}
	next := len(g.replicas())
	members[at] = next
	return next, g.reconfigure(ctx, members)
}

// Replicas is how many replicas the group has hosted, members or not: the
// number the next new replica takes.
func (g *Group) Replicas() int { return len(g.replicas()) }

// plan checks replicas as a new configuration and returns its member names
// and the numbers of the replicas it adds.
func (g *Group) plan(replicas []int) (names []string, fresh []int, err error) {
	hosted := len(g.replicas())
	for _, i := range replicas {
		switch {
		case i < 0:
			return nil, nil, fmt.Errorf("%w: replica %d: negative number", vsr.ErrMembers, i)
		case i >= hosted:
			fresh = append(fresh, i)
		}
		names = append(names, strconv.Itoa(i))
	}
	if err := vsr.CheckMembers(names); err != nil {
		return nil, nil, err
	}
	slices.Sort(fresh)
	for k, i := range fresh {
		if i != hosted+k {
			return nil, nil, fmt.Errorf("%w: replica %d: the next new replica is number %d", vsr.ErrMembers, i, hosted+k)
		}
	}
	return names, fresh, nil
}

// join starts replica i, new to the group, to join configuration members:
// it waits for the new epoch and takes the state from its members.
func (g *Group) join(i int, members []string) error {
	if g.cfg.DataDir != "" {
		rec, err := g.cfg.readRecord()
		if err != nil {
			return err
		}
		rec = append(rec, joinedReplica{Replica: i, Members: members})
		if err := g.cfg.writeRecord(rec); err != nil {
			return fmt.Errorf("vsr: cannot record replica %d: %w", i, err)
		}
	}
	if err := g.host(i, g.memberConfig(members, i, true)); err != nil {
		return err
	}
	return g.sup.Spawn(i)
}

// forget undoes join for the replicas fresh, which a refused
// reconfiguration did not add: it stops them, drops them from the group and
// from its record, and removes their data directories.
func (g *Group) forget(fresh []int) error {
	if len(fresh) == 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	old := *g.slots.Load()
	keep := len(old)
	for _, i := range fresh {
		if i < len(old) {
			errs = append(errs, g.sup.Kill(i), g.sup.Host(i, nil))
			keep = min(keep, i)
		}
	}
	next := slices.Clone(old[:keep])
	g.slots.Store(&next)
	if g.cfg.DataDir == "" {
		return errors.Join(errs...)
	}
	rec, err := g.cfg.readRecord()
	errs = append(errs, err)
	rec = slices.DeleteFunc(rec, func(j joinedReplica) bool { return j.Replica >= keep })
	errs = append(errs, g.cfg.writeRecord(rec))
	for _, i := range fresh {
		errs = append(errs, os.RemoveAll(filepath.Join(g.cfg.DataDir, fmt.Sprintf("replica-%d", i))))
	}
	return errors.Join(errs...)
}

// memberNames is the member names of a group's first n replicas.
func memberNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}

// replicaNumber is the replica a member name names: its number in decimal,
// written the one way strconv.Itoa writes it.
func replicaNumber(name string) (int, bool) {
	i, err := strconv.Atoi(name)
	if err != nil || i < 0 || strconv.Itoa(i) != name {
		return -1, false
	}
	return i, true
}

// A group with a DataDir records in groupFile the replicas it added after
// it started, so that StartGroup on the same directory hosts them again with
// the configuration they joined: a replica restarted from its disk replays
// its log from the configuration it was first started with.

// groupFile is the group's record in DataDir.
const groupFile = "group.json"

// groupRecord is the content of groupFile.
type groupRecord struct {
	ClusterID uint64          `json:"cluster_id"`
	Replicas  int             `json:"replicas"`
	Joined    []joinedReplica `json:"joined"`
}

// joinedReplica is a replica that joined the group, and the configuration
// it joined.
type joinedReplica struct {
	Replica int      `json:"replica"`
	Members []string `json:"members"`
}

// readRecord reads the replicas the group in cfg.DataDir added; none if
// there is no DataDir or no record.
func (cfg GroupConfig) readRecord() ([]joinedReplica, error) {
	if cfg.DataDir == "" {
		return nil, nil
	}
	path := filepath.Join(cfg.DataDir, groupFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vsr: reading %s: %w", path, err)
	}
	var rec groupRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%w: %s is damaged: %w", storage.ErrDamaged, path, err)
	}
	if rec.ClusterID != cfg.ClusterID || rec.Replicas != cfg.Replicas {
		return nil, fmt.Errorf("%w: %s is the record of cluster %d started with %d replicas, not of cluster %d with %d",
			storage.ErrIdentity, path, rec.ClusterID, rec.Replicas, cfg.ClusterID, cfg.Replicas)
	}
	for k, j := range rec.Joined {
		if j.Replica != cfg.Replicas+k || vsr.CheckMembers(j.Members) != nil ||
			!slices.Contains(j.Members, strconv.Itoa(j.Replica)) {
			return nil, fmt.Errorf("%w: %s: joined replica %d is malformed", storage.ErrDamaged, path, k)
		}
	}
	return rec.Joined, nil
}

// writeRecord replaces the group's record, atomically.
func (cfg GroupConfig) writeRecord(joined []joinedReplica) error {
	b, err := json.MarshalIndent(groupRecord{ClusterID: cfg.ClusterID, Replicas: cfg.Replicas, Joined: joined}, "", "  ")
	if err != nil {
		return err
	}
	return storage.WriteFileAtomic(cfg.DataDir, groupFile, append(b, '\n'))
}
