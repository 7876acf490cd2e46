package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// supervisorName is the name of the supervisor on every node, and
// replicaActorID the ID of the one replica a node hosts, whatever its index:
// an index names different members in different epochs, so a member is
// reached by its address alone (see Resolve).
const supervisorName = "vsr"

var replicaActorID = supervisor.ReplicaID(supervisorName, 0)

// Resolve finds the replica actor of the member named name: a member's name
// is the address of its node.
func Resolve(name string) *actor.PID { return actor.NewPID(name, replicaActorID) }

// PeerPIDs returns the PID of every replica of c.
func (c Config) PeerPIDs() []*actor.PID {
	pids := make([]*actor.PID, len(c.Replicas))
	for j, a := range c.Replicas {
		pids[j] = Resolve(a)
	}
	return pids
}

// NodeConfig configures the node that hosts replica Index of a group.
type NodeConfig struct {
	Config
	// Index is the replica this node hosts.
	Index int
	// Listen is the host:port to bind (default: Replicas[Index]); the node
	// always advertises Replicas[Index], the address its peers know.
	Listen string
	// DataDir holds the replica's log, hard state and checkpoints (see
	// StartNode). Default: "vsr-data-<cluster>-<index>" in the working
	// directory.
	DataDir string
	// Memory keeps the replica's state in memory only, the paper's design:
	// DataDir then holds a marker file alone, a restarted node recovers
	// from its peers, and a group that loses more than f nodes at once
	// loses its data.
	Memory bool
	// Recover says that this node's data directory was lost (a replaced
	// disk, a new machine): if it is empty, the node runs VR recovery from
	// its peers, in the epoch of Config, instead of joining as a new member.
	// Without it an empty directory means a new member of a new group. It
	// changes nothing for a directory that holds data.
	Recover bool
	// Join says that the node, with an empty data directory, is a new
	// member of a reconfiguration to Replicas: it waits for the group to
	// commit that configuration, fetches the state, and only then takes
	// part (docs/reconfiguration.md). It changes nothing for a directory
	// that holds data: a node always comes back as what it was first
	// started as.
	Join bool
	// NewStateMachine makes the replica's state machine.
	NewStateMachine statemachine.Factory
	// Logger gets the node's log, Proto.Actor's included (nothing if nil).
	Logger *slog.Logger
	// OnEvent is called on every change of the replica's status or view.
	OnEvent func(actors.Event)
	// Observer, if set, receives the replica's protocol events (see
	// actors.Observer; metrics.Metrics is one), on the replica's goroutine.
	Observer actors.Observer
	// DisableHints turns off the membership hint, leaving failure detection
	// to the inactivity timeout alone (for measuring the difference).
	DisableHints bool
}

// Node is a running node: an actor system with remoting, a supervisor, and
// the replica under it.
type Node struct {
	cfg    NodeConfig
	system *actor.ActorSystem
	remote *remote.Remote
	sup    *supervisor.Supervisor
	sub    *eventstream.Subscription
	self   *actor.PID
	// record is how the node was first started (nodefile.go); with
	// Memory it also follows the configurations the replica takes part in.
	record *nodeRecord
	recMu  sync.Mutex
	// stopOnce makes Stop idempotent; stopErr is the first Stop's result.
	stopOnce sync.Once
	stopErr  error
}

// markerFile is written when a node first joins its group. VR needs no disk
// for the protocol, but a node must know whether it is new: a node that
// restarts (after a crash, kill -9 or reboot) must run recovery and never
// start as a fresh member of view 0, which would answer with a state it no
// longer has.
const markerFile = "joined"

// StartNode starts the node. By default the replica keeps its state in
// DataDir: a node whose directory is empty or missing starts as a new member
// of a new group (normal in view 0, empty) unless Recover is set; a node
// whose directory holds data comes back from it, after a clean stop, a
// kill -9 or a power cut, and rejoins its view (or recovers from its peers
// what its disk lost). A directory of another cluster, replica index or
// group size, or of another format version, is refused and left untouched.
//
// With Memory, a node whose directory has no marker file starts as a new
// member and writes the marker; a node whose directory has it runs VR
// recovery. To start a new group on old directories, remove them.
func StartNode(cfg NodeConfig) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Index < 0 || cfg.Index >= len(cfg.Replicas) {
		return nil, fmt.Errorf("%w: index %d is not in 0..%d", ErrConfig, cfg.Index, len(cfg.Replicas)-1)
	}
	if cfg.NewStateMachine == nil {
		return nil, vsr.ErrNoStateMachine
	}
	if cfg.Join && cfg.Recover {
		return nil, fmt.Errorf("%w: -join starts a new member and -recover a member that lost its disk: give one", ErrConfig)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = fmt.Sprintf("vsr-data-%d-%d", cfg.ClusterID, cfg.Index)
	}
	st, err := cfg.startState()
	if err != nil {
		return nil, err
	}
	system, logger := actors.NewActorSystem(cfg.Logger)
	listen := cfg.Listen
	if listen == "" {
		listen = cfg.Replicas[cfg.Index]
	}
	r, err := startRemote(system, listen, cfg.Replicas[cfg.Index], cfg.TLS, cfg.History.MaxMessageBytes)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, system: system, remote: r, record: st.record}
	// The transport's limits were computed from the same
	// History.MaxMessageBytes (see TransportMessageBytes).
	props := []*actor.Props{actors.NewReplicaProps(actors.ReplicaConfig{
		Core: cfg.History.Apply(st.core), NewStateMachine: cfg.NewStateMachine, Resolve: Resolve,
		TickInterval: time.Duration(cfg.Tick), Logger: logger, OnEvent: n.onEvent, OpenStore: st.openStore,
		Observer: cfg.Observer,
	})}
	if n.sup, err = supervisor.StartSupervisor(system, supervisorName, props, 0, 0); err != nil {
		_ = n.Stop() // the start's error is the one to report
		return nil, err
	}
	if err := n.sup.Spawn(0); err != nil {
		_ = n.Stop()
		return nil, err
	}
	if st.fresh {
		n.recMu.Lock()
		err := n.record.write(cfg.DataDir)
		n.recMu.Unlock()
		if err != nil {
			_ = n.Stop()
			return nil, fmt.Errorf("vsr: writing %s: %w", cfg.DataDir, err)
		}
	}
	n.self = system.NewLocalPID(replicaActorID)
	// Membership hint: when the transport loses a peer's endpoint, tell the
	// replica, so that a lost primary is replaced at once rather than after
	// the inactivity timeout. Remoting does not re-arm watches after a
	// reconnect, so the node uses endpoint events, not watches.
	if cfg.DisableHints {
		return n, nil
	}
	// Only the loss of a connection that was up counts: a peer that has not
	// started yet also ends in a terminated event (after remoting's retries),
	// and that says nothing about the primary being down now.
	var mu sync.Mutex
	connected := map[string]bool{}
	n.sub = system.EventStream.Subscribe(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *remote.EndpointConnectedEvent:
			connected[e.Address] = true
		case *remote.EndpointTerminatedEvent:
			if connected[e.Address] {
				delete(connected, e.Address)
				system.Root.Send(n.self, &actors.PeerDown{Address: e.Address})
			}
		}
	})
	return n, nil
}

// startRemote starts Proto.Actor remoting on listen, advertising advertise,
// with the transport's limits for messages of up to maxMessageBytes (zero:
// the core's default). remote.Start panics when it cannot listen; that
// becomes an error here.
func startRemote(system *actor.ActorSystem, listen, advertise string, tlsFiles *TLSFiles, maxMessageBytes int) (r *remote.Remote, err error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("%w: listen address %q: %w", ErrConfig, listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("%w: listen address %q: bad port", ErrConfig, listen)
	}
	opts, err := transportOptions(tlsFiles, maxMessageBytes)
	if err != nil {
		return nil, err
	}
	if advertise != "" {
		opts = append(opts, remote.WithAdvertisedHost(advertise))
	}
	r = remote.NewRemote(system, remote.Configure(host, port, opts...))
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("vsr: cannot start remoting on %s: %v", listen, p)
		}
	}()
	r.Start()
	return r, nil
}

// Address is the address the node advertises.
func (n *Node) Address() string { return n.system.Address() }

// System is the node's actor system.
func (n *Node) System() *actor.ActorSystem { return n.system }

// Stop stops the replica, remoting and the actor system, and returns the
// error of stopping the replica's supervisor, if any. It is safe to call
// more than once, also concurrently: the first call does the work, and every
// call returns once it is done, with its result. (Proto.Actor's
// ActorSystem.Shutdown closes a channel, so a second shutdown would panic.)
func (n *Node) Stop() error {
	n.stopOnce.Do(func() {
		if n.sub != nil {
			n.system.EventStream.Unsubscribe(n.sub)
		}
		if n.sup != nil {
			n.stopErr = n.sup.Stop()
		}
		if n.remote != nil {
			n.remote.Shutdown(false)
		}
		n.system.Shutdown()
	})
	return n.stopErr
}

// checkDataDir opens the data directory once, so that a directory of
// another replica or format is refused before the node starts, and
// returns how the replica opens it at each start.
func checkDataDir(dir string, id storage.Identity) (func() (storage.Store, error), error) {
	open := func() (storage.Store, error) { return storage.Open(storage.OSFS{}, dir, id, storage.Options{}) }
	s, err := open()
	if err != nil {
		return nil, fmt.Errorf("vsr: data directory %s: %w", dir, err)
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("vsr: data directory %s: %w", dir, err)
	}
	return open, nil
}

func joinedBefore(dir string, clusterID uint64) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, markerFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("vsr: reading %s: %w", dir, err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.FormatUint(clusterID, 10) {
		return false, fmt.Errorf("%w: %s belongs to cluster %s, not %d", ErrConfig, dir, got, clusterID)
	}
	return true, nil
}

func markJoined(dir string, clusterID uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, markerFile), []byte(strconv.FormatUint(clusterID, 10)+"\n"), 0o644)
}
