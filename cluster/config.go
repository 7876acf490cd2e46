// Package cluster runs one replica per node across machines on Proto.Actor
// remoting. It is what the vsr node, client and admin commands are made of.
//
// [StartNode] starts the [Node] that hosts replica Index of a group
// described by a [Config] (its cluster ID, the address of each replica, its
// epoch; [Load] reads one from a JSON file): a replica actor under a
// supervisor, with its log and checkpoints in a data directory unless
// NodeConfig.Memory is set. A node restarted on its directory comes back
// from it; NodeConfig.Recover and NodeConfig.Join say what an empty
// directory means (a lost disk, a new member of a reconfiguration). A
// node's member name is its address, and [Resolve] turns one into the
// replica's PID. [NewClient] reaches a group by address from another
// process, with the same Execute and Read as actors.Client, and status.
//
// Between nodes: messages from an address outside the configuration are
// dropped and counted; [WriteCerts] and TLSFiles give every connection mutual
// TLS 1.3; a lost connection to the primary's node is a hint that makes the
// backups probe for a view change at once; and the transport's gRPC limits
// are set so that a batch of messages at the core's MaxMessageBytes is never
// refused ([TransportMessageBytes]). The repository's README gives the
// operator's procedures.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vsrgo/vsr/vsr"
)

// Config describes a replica group across machines. Every node and client
// of the group must use the same Replicas, in the same order: the position
// of an address is that replica's index.
type Config struct {
	// ClusterID names the group; messages of other groups are dropped.
	ClusterID uint64 `json:"cluster_id"`
	// Replicas lists each replica's host:port, by index: the members of
	// the group's configuration in epoch Epoch. A member's address is its
	// name.
	Replicas []string `json:"replicas"`
	// Epoch is the epoch whose configuration Replicas is: 0 for a new
	// group, and after each reconfiguration one more (`vsr admin
	// reconfigure` prints the next configuration file). Nodes started to
	// join or to recover use it; clients learn later ones from replies.
	Epoch uint64 `json:"epoch,omitempty"`
	// TLS, if set, makes every connection mutual TLS.
	TLS *TLSFiles `json:"tls,omitempty"`
	// Tick is the core's tick (default 10ms).
	Tick Duration `json:"tick,omitempty"`
	// History bounds what the replicas keep and send (zero fields take the
	// core's defaults). Every node of a group must use the same values.
	History History `json:"history,omitempty"`
}

// History is the part of vsr.Config that bounds the cost of history: see
// the fields of vsr.Config of the same names.
type History struct {
	CheckpointInterval int    `json:"checkpoint_interval,omitempty"`
	TrailingOps        int    `json:"trailing_ops,omitempty"`
	PipelineMax        int    `json:"pipeline_max,omitempty"`
	MaxMessageBytes    int    `json:"max_message_bytes,omitempty"`
	SessionIdleOps     uint64 `json:"session_idle_ops,omitempty"`
	MaxSessions        int    `json:"max_sessions,omitempty"`
}

// Apply copies the bounds into a core configuration.
func (h History) Apply(c vsr.Config) vsr.Config {
	c.CheckpointInterval, c.TrailingOps, c.PipelineMax = h.CheckpointInterval, h.TrailingOps, h.PipelineMax
	c.MaxMessageBytes, c.SessionIdleOps, c.MaxSessions = h.MaxMessageBytes, h.SessionIdleOps, h.MaxSessions
	return c
}

// TLSFiles names the PEM files of a node's or client's identity.
type TLSFiles struct {
	CA   string `json:"ca"`   // the CA that signs every member's certificate
	Cert string `json:"cert"` // this member's certificate
	Key  string `json:"key"`  // this member's private key
}

// Duration is a time.Duration that reads "10ms" from JSON.
type Duration time.Duration

// UnmarshalJSON reads a duration string such as "10ms".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"10ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("vsr: bad cluster configuration")

// Load reads a Config from a JSON file and validates it.
func Load(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	return c, c.Validate()
}

// ParseReplicas reads a comma-separated list of host:port addresses.
func ParseReplicas(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	n := len(c.Replicas)
	if n == 0 || n%2 == 0 {
		return fmt.Errorf("%w: need an odd number of replicas (n = 2f+1), got %d", ErrConfig, n)
	}
	seen := map[string]int{}
	for i, a := range c.Replicas {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			return fmt.Errorf("%w: replica %d: %q is not host:port", ErrConfig, i, a)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("%w: replica %d: %q has no valid port", ErrConfig, i, a)
		}
		if j, dup := seen[a]; dup {
			return fmt.Errorf("%w: replicas %d and %d have the same address %s", ErrConfig, j, i, a)
		}
		seen[a] = i
	}
	if c.TLS != nil && (c.TLS.CA == "" || c.TLS.Cert == "" || c.TLS.Key == "") {
		return fmt.Errorf("%w: tls needs ca, cert and key", ErrConfig)
	}
	if c.Tick < 0 {
		return fmt.Errorf("%w: negative tick", ErrConfig)
	}
	core := c.History.Apply(vsr.Config{ReplicaCount: n, StateMachine: noStateMachine{}})
	if err := core.Validate(); err != nil {
		return fmt.Errorf("%w: history: %w", ErrConfig, err)
	}
	return nil
}

// noStateMachine stands in for the state machine when only the bounds of a
// core configuration are being checked.
type noStateMachine struct{}

func (noStateMachine) Apply([]byte) []byte       { return nil }
func (noStateMachine) ReadOnly([]byte) bool      { return false }
func (noStateMachine) Snapshot() ([]byte, error) { return nil, nil }
func (noStateMachine) Restore([]byte) error      { return nil }
