// Package metrics turns the protocol events of replicas (actors.Observer)
// into Prometheus metrics, and serves them with health and readiness checks
// for operators.
//
// A Metrics is an actors.Observer: give it to a replica, a node or a group,
// and register it on a Prometheus registry.
//
//	m := metrics.New()
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(m)
//	g, err := supervisor.StartGroup(supervisor.GroupConfig{..., Observer: m})
//
// Every series carries a "replica" label: the replica's number in the group
// (supervisor.Group), or its index in the current configuration (a node).
// Counters count from the moment the Metrics was made; gauges give the
// replica's state as of its latest event. The metrics and what each means
// are listed in Describe and in docs/observability.md.
//
// Observe runs on the replica's goroutine for every message sent and
// received, so it takes no lock and allocates nothing once a replica has
// been seen: a few atomic adds per event.
package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/vsr"
)

// Metrics collects the metrics of any number of replicas. Its zero value is
// not usable: make one with New.
type Metrics struct {
	// replicas holds each replica's metrics by replica number. It is
	// replaced whole under mu when a replica is first seen, so Observe
	// reads it without a lock.
	mu       sync.Mutex
	replicas atomic.Pointer[[]*replicaMetrics]
	// one, if set, is the one replica of a Metrics made by ForReplica.
	one *replicaMetrics

	commitLatency *prometheus.HistogramVec
	batchSize     *prometheus.HistogramVec
	applyDuration *prometheus.HistogramVec
	messageBytes  *prometheus.HistogramVec
}

// Buckets of the histograms. Commit latency and op durations run from tens
// of microseconds (one process, no disk) to seconds (a view change under
// way); batches from one op to the pipeline's limits; messages from a
// heartbeat to a checkpoint chunk.
var (
	latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2.5, 13) // 50µs .. ~3s
	applyBuckets   = prometheus.ExponentialBuckets(1e-6, 4, 12)    // 1µs .. ~4s
	batchBuckets   = prometheus.ExponentialBuckets(1, 2, 12)       // 1 .. 2048 ops
	sizeBuckets    = prometheus.ExponentialBuckets(64, 4, 11)      // 64B .. 64MiB
	replicaLabel   = []string{"replica"}
	messageLabels  = []string{"replica", "type"}
)

// maxLatencyMarks bounds the batches a primary tracks between appending
// and committing them.
const maxLatencyMarks = 4096

// New makes a Metrics for any number of replicas, each labelled with its
// number (Observation.Replica), with no replica seen yet.
func New() *Metrics {
	m := newMetrics()
	m.replicas.Store(&[]*replicaMetrics{})
	return m
}

// ForReplica makes a Metrics for one replica, whatever its number, with
// label as its "replica" label: a node's address, say. A node's index in
// its configuration changes when the group is reconfigured; its series must
// not.
func ForReplica(label string) *Metrics {
	m := newMetrics()
	m.one = m.newReplica(label)
	m.replicas.Store(&[]*replicaMetrics{m.one})
	return m
}

func newMetrics() *Metrics {
	m := &Metrics{
		commitLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vsr_commit_latency_seconds",
			Help:    "Time from the primary appending ops to its log to committing them, one observation per batch appended together.",
			Buckets: latencyBuckets,
		}, replicaLabel),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vsr_prepare_batch_ops",
			Help:    "Ops in each new Prepare the primary sent (retransmissions not counted).",
			Buckets: batchBuckets,
		}, replicaLabel),
		applyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vsr_apply_duration_seconds",
			Help:    "Time the state machine took to execute one op.",
			Buckets: applyBuckets,
		}, replicaLabel),
		messageBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vsr_message_sent_bytes",
			Help:    "Encoded size of each message sent to another replica or a remote client.",
			Buckets: sizeBuckets,
		}, messageLabels),
	}
	return m
}

// Observe records one observation; it makes the Metrics an actors.Observer.
func (m *Metrics) Observe(o actors.Observation) {
	r := m.one
	if r == nil {
		r = m.replica(o.Replica)
	}
	if r == nil {
		return
	}
	if o.Kind == actors.ObservedStopped {
		r.stopped()
		return
	}
	r.state(o)
	switch o.Kind {
	case actors.ObservedReceived:
		r.received(o)
	case actors.ObservedSent:
		r.sent(o)
	case actors.ObservedCommitAdvanced:
		r.opsCommitted.Add(uint64(o.Count))
		r.committed(o.CommitNumber)
	case actors.ObservedViewChangeStarted:
		r.viewChanges.Add(1)
	case actors.ObservedViewChangeCompleted:
		r.viewChangesCompleted.Add(1)
	case actors.ObservedPrimaryTimeout:
		r.primaryTimeouts.Add(1)
	case actors.ObservedLeadershipStarted:
		r.leaderships.Add(1)
	case actors.ObservedLeadershipStopped:
		r.leadershipStopped()
	case actors.ObservedOperationApplied:
		r.apply.Observe(o.Duration.Seconds())
	case actors.ObservedDropped:
		if int(o.Reason) >= 0 && int(o.Reason) < len(r.drops) {
			r.drops[o.Reason].Add(uint64(o.Count))
		}
	case actors.ObservedCheckpoint:
		r.checkpoints.Add(1)
	case actors.ObservedStateTransferred:
		r.stateTransfers.Add(1)
	case actors.ObservedEpochChanged:
		r.epochChanges.Add(1)
	}
}

// maxReplicas bounds the replica numbers a Metrics accepts, so that a
// corrupt number cannot make it allocate without end.
const maxReplicas = 4096

// replica is replica i's metrics, made on first sight; nil for a number
// out of range.
func (m *Metrics) replica(i int) *replicaMetrics {
	if rs := *m.replicas.Load(); i >= 0 && i < len(rs) && rs[i] != nil {
		return rs[i]
	}
	if i < 0 || i >= maxReplicas {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rs := *m.replicas.Load()
	if i < len(rs) && rs[i] != nil {
		return rs[i]
	}
	next := make([]*replicaMetrics, max(len(rs), i+1))
	copy(next, rs)
	next[i] = m.newReplica(strconv.Itoa(i))
	m.replicas.Store(&next)
	return next[i]
}

// newReplica makes the metrics of the replica labelled label, with every
// labelled child resolved now so that Observe never looks one up.
func (m *Metrics) newReplica(label string) *replicaMetrics {
	r := &replicaMetrics{label: label, commitLatency: m.commitLatency.WithLabelValues(label),
		batch: m.batchSize.WithLabelValues(label), apply: m.applyDuration.WithLabelValues(label)}
	for t := range r.sentBytes {
		r.sentBytes[t] = m.messageBytes.WithLabelValues(label, messageTypeNames[t])
	}
	return r
}

// replicaMetrics is one replica's counters and state. The counters and
// gauges are atomics because Collect reads them from the scraping
// goroutine; the latency marks are touched only by Observe, which runs on
// the replica's goroutine alone.
type replicaMetrics struct {
	label string

	status, epoch, view, opNumber, commitNumber atomic.Uint64
	primary, up                                 atomic.Bool

	opsCommitted, viewChanges, viewChangesCompleted, primaryTimeouts atomic.Uint64
	leaderships, checkpoints, stateTransfers, epochChanges           atomic.Uint64
	drops                                                            [numDropReasons]atomic.Uint64
	messagesSent, messagesReceived                                   [numMessageTypes]atomic.Uint64

	// acked is, while this replica is primary, the highest op each backup
	// (by index in the configuration) has acknowledged with a PrepareOK;
	// the lag is computed at scrape time, so a silent backup's lag grows.
	ackMu sync.Mutex
	acked map[int]uint64

	commitLatency, batch, apply prometheus.Observer
	sentBytes                   [numMessageTypes]prometheus.Observer

	// marks are the primary's (op number, time) pairs of ops appended and
	// not yet committed, oldest first; lastPrepared is the highest op
	// number a Prepare carried.
	marks        []latencyMark
	lastPrepared uint64
	// leading says the backups' acknowledgements are tracked: the replica
	// has been seen as the normal primary since it last stopped being one.
	leading bool
}

type latencyMark struct {
	op uint64
	at time.Time
}

// numDropReasons is how many vsr.DropReason values there are.
const numDropReasons = len(vsr.Drops{})

// state keeps the replica's state as the observation describes it.
func (r *replicaMetrics) state(o actors.Observation) {
	r.up.Store(true)
	r.status.Store(uint64(o.Status))
	r.epoch.Store(o.Epoch)
	r.view.Store(o.View)
	r.opNumber.Store(o.OpNumber)
	r.commitNumber.Store(o.CommitNumber)
	leading := o.Primary && o.Status == vsr.StatusNormal
	r.primary.Store(leading)
	if leading && !r.leading {
		// The first event of a primary: a replica that starts as the
		// primary of a new group never reports a leadership change.
		r.leadershipStarted(o)
	}
	if leading {
		r.markAppended(o.OpNumber)
	}
}

// markAppended notes the time the primary's op number first reached op.
// The marks are bounded: a primary whose commits stall past
// maxLatencyMarks batches forgets the oldest, which then go unmeasured.
func (r *replicaMetrics) markAppended(op uint64) {
	if n := len(r.marks); n > 0 && r.marks[n-1].op >= op || op <= r.commitNumber.Load() {
		return
	}
	if len(r.marks) == maxLatencyMarks {
		r.marks = append(r.marks[:0], r.marks[1:]...)
	}
	r.marks = append(r.marks, latencyMark{op: op, at: time.Now()})
}

// committed observes the latency of every batch the commit number covers.
func (r *replicaMetrics) committed(commit uint64) {
	if len(r.marks) == 0 {
		return
	}
	now, done := time.Now(), 0
	for done < len(r.marks) && r.marks[done].op <= commit {
		r.commitLatency.Observe(now.Sub(r.marks[done].at).Seconds())
		done++
	}
	r.marks = append(r.marks[:0], r.marks[done:]...)
}

// leadershipStarted starts tracking the backups' acknowledgements. Each
// starts as holding the primary's log: a new view's StartView gave it that
// log, and an idle group sends no Prepare to acknowledge. A backup that
// never answers then lags by every op appended since.
func (r *replicaMetrics) leadershipStarted(o actors.Observation) {
	r.ackMu.Lock()
	defer r.ackMu.Unlock()
	r.leading = true
	r.acked = make(map[int]uint64, o.ReplicaCount)
	for b := range o.ReplicaCount {
		if b != o.Index {
			r.acked[b] = o.OpNumber
		}
	}
}

// stopped notes that the replica's actor stopped: it serves nothing, and
// its state gauges keep their last values for the post-mortem.
func (r *replicaMetrics) stopped() {
	r.up.Store(false)
	r.primary.Store(false)
	r.leadershipStopped()
}

// leadershipStopped forgets what only a primary tracks.
func (r *replicaMetrics) leadershipStopped() {
	r.marks, r.lastPrepared, r.leading = r.marks[:0], 0, false
	r.ackMu.Lock()
	r.acked = nil
	r.ackMu.Unlock()
}

// received counts a message received and, on the primary, notes a
// backup's acknowledgement.
func (r *replicaMetrics) received(o actors.Observation) {
	r.messagesReceived[messageType(o.Message)].Add(1)
	if ok, isOK := o.Message.(*messages.PrepareOK); isOK && o.Primary && o.Peer >= 0 && ok.GetView() == o.View {
		r.ackMu.Lock()
		if acked, known := r.acked[o.Peer]; known && ok.GetOpNumber() > acked {
			r.acked[o.Peer] = ok.GetOpNumber()
		}
		r.ackMu.Unlock()
	}
}

// sent counts a message sent, its size, and, for a new Prepare, its batch.
func (r *replicaMetrics) sent(o actors.Observation) {
	t := messageType(o.Message)
	r.messagesSent[t].Add(1)
	if o.Size > 0 {
		r.sentBytes[t].Observe(float64(o.Size))
	}
	if p, ok := o.Message.(*messages.Prepare); ok {
		if es := p.GetEntries(); len(es) > 0 && es[len(es)-1].GetOpNumber() > r.lastPrepared {
			r.lastPrepared = es[len(es)-1].GetOpNumber()
			r.batch.Observe(float64(len(es)))
		}
	}
}
