package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/vsrgo/vsr/storage"
)

// A node's record of how it was first started, in its data directory
// (storage.OwnerFile). A replica restarted from its disk must be given the
// configuration it was first started with (vsr.Restart replays its log from
// there, through every reconfiguration since), and its storage identity must
// not change when the group's configuration does; the operator, meanwhile,
// starts it with the group's current configuration file. So the first start
// writes the record, and every later start takes the replica's configuration
// from it and checks only that the node is the same member of the same
// cluster.

// nodeRecord is the content of the owner file.
type nodeRecord struct {
	ClusterID uint64 `json:"cluster_id"`
	// Self is the node's member name: its advertised address.
	Self string `json:"self"`
	// Members is the configuration the node was first started with, and
	// Joining says it was started to join it.
	Members []string `json:"members"`
	Joining bool     `json:"joining,omitempty"`
	// With Memory, the latest configuration the node took part in: a node
	// that restarts without its state recovers there. TookPart is unset
	// while a node started to join has not yet held its state.
	TookPart bool     `json:"took_part,omitempty"`
	Epoch    uint64   `json:"epoch,omitempty"`
	Current  []string `json:"current,omitempty"`
}

// index is the node's index in the configuration it was first started with.
func (r *nodeRecord) index() int { return slices.Index(r.Members, r.Self) }

// readNodeRecord reads dir's record; nil if there is none.
func readNodeRecord(dir string) (*nodeRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, storage.OwnerFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vsr: reading %s: %w", dir, err)
	}
	var r nodeRecord
	if err := json.Unmarshal(b, &r); err != nil || r.index() < 0 {
		return nil, fmt.Errorf("%w: %s/%s is damaged: remove the data directory to start this node anew", ErrConfig,
			dir, storage.OwnerFile)
	}
	return &r, nil
}

// check refuses a record of another cluster or another member.
func (r *nodeRecord) check(dir string, clusterID uint64, self string) error {
	if r.ClusterID != clusterID || r.Self != self {
		return fmt.Errorf("%w: %s belongs to member %s of cluster %d, not to member %s of cluster %d", ErrConfig,
			dir, r.Self, r.ClusterID, self, clusterID)
	}
	return nil
}

// write replaces dir's record, atomically: a crash leaves the old one or
// the new one.
func (r *nodeRecord) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return storage.WriteFileAtomic(dir, storage.OwnerFile, append(b, '\n'))
}
