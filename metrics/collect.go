package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vsrgo/vsr/vsr"
)

// The metrics a Metrics exports besides its histograms. Each is read from
// the replicas' atomics at scrape time.
var (
	descOpsCommitted = prometheus.NewDesc("vsr_ops_committed_total",
		"Ops the replica's commit number advanced over.", replicaLabel, nil)
	descViewChanges = prometheus.NewDesc("vsr_view_changes_total",
		"View changes the replica started or joined (left normal status for a later view).", replicaLabel, nil)
	descViewChangesCompleted = prometheus.NewDesc("vsr_view_changes_completed_total",
		"View changes after which the replica was normal again, as primary or backup.", replicaLabel, nil)
	descPrimaryTimeouts = prometheus.NewDesc("vsr_primary_timeouts_total",
		"View changes the replica started because it stopped hearing from its primary.", replicaLabel, nil)
	descLeaderships = prometheus.NewDesc("vsr_leaderships_total",
		"Times the replica became the normal primary of a view.", replicaLabel, nil)
	descCheckpoints = prometheus.NewDesc("vsr_checkpoints_total",
		"Checkpoints the replica took.", replicaLabel, nil)
	descStateTransfers = prometheus.NewDesc("vsr_state_transfers_total",
		"Checkpoints the replica installed from a peer (state transfer).", replicaLabel, nil)
	descEpochChanges = prometheus.NewDesc("vsr_epoch_changes_total",
		"Epochs (configurations) the replica entered.", replicaLabel, nil)
	descDropped = prometheus.NewDesc("vsr_dropped_messages_total",
		"Messages the replica's core dropped unread, by reason.", []string{"replica", "reason"}, nil)
	descSent = prometheus.NewDesc("vsr_messages_sent_total",
		"Messages the replica sent, by type (a Commit is the primary's heartbeat).", messageLabels, nil)
	descReceived = prometheus.NewDesc("vsr_messages_received_total",
		"Messages that reached the replica's core, by type.", messageLabels, nil)

	descOpNumber = prometheus.NewDesc("vsr_op_number",
		"The replica's op number: the last op in its log.", replicaLabel, nil)
	descCommitNumber = prometheus.NewDesc("vsr_commit_number",
		"The replica's commit number: the last op it knows committed.", replicaLabel, nil)
	descView  = prometheus.NewDesc("vsr_view", "The replica's view number.", replicaLabel, nil)
	descEpoch = prometheus.NewDesc("vsr_epoch", "The replica's epoch (configuration number).", replicaLabel, nil)
	descUp    = prometheus.NewDesc("vsr_replica_up",
		"1 while the replica's actor runs, 0 once it stopped (killed, panicked, or shut down).", replicaLabel, nil)
	descPrimary = prometheus.NewDesc("vsr_is_primary",
		"1 while the replica is the normal primary of its view.", replicaLabel, nil)
	descStatus = prometheus.NewDesc("vsr_status",
		"1 for the replica's current status, 0 for the others.", []string{"replica", "status"}, nil)
	descLag = prometheus.NewDesc("vsr_backup_lag_ops",
		"On the primary: ops of its log that the backup (by index in the configuration) has not acknowledged.",
		[]string{"replica", "backup"}, nil)
)

var statuses = []vsr.Status{vsr.StatusNormal, vsr.StatusViewChange, vsr.StatusRecovering, vsr.StatusJoining, vsr.StatusLeaving}

// Describe sends the descriptors of every metric; with Collect it makes a
// Metrics a prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOpsCommitted, descViewChanges, descViewChangesCompleted,
		descPrimaryTimeouts, descLeaderships, descCheckpoints, descStateTransfers, descEpochChanges, descDropped,
		descSent, descReceived, descOpNumber, descCommitNumber, descView, descEpoch, descUp, descPrimary, descStatus, descLag} {
		ch <- d
	}
	m.commitLatency.Describe(ch)
	m.batchSize.Describe(ch)
	m.applyDuration.Describe(ch)
	m.messageBytes.Describe(ch)
}

// Collect sends the current value of every metric of every replica seen.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, r := range *m.replicas.Load() {
		if r != nil {
			r.collect(ch)
		}
	}
	m.commitLatency.Collect(ch)
	m.batchSize.Collect(ch)
	m.applyDuration.Collect(ch)
	m.messageBytes.Collect(ch)
}

func (r *replicaMetrics) collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{r.label}, labels...)...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{r.label}, labels...)...)
	}
	counter(descOpsCommitted, r.opsCommitted.Load())
	counter(descViewChanges, r.viewChanges.Load())
	counter(descViewChangesCompleted, r.viewChangesCompleted.Load())
	counter(descPrimaryTimeouts, r.primaryTimeouts.Load())
	counter(descLeaderships, r.leaderships.Load())
	counter(descCheckpoints, r.checkpoints.Load())
	counter(descStateTransfers, r.stateTransfers.Load())
	counter(descEpochChanges, r.epochChanges.Load())
	for reason := range r.drops {
		counter(descDropped, r.drops[reason].Load(), vsr.DropReason(reason).String())
	}
	for t := range numMessageTypes {
		// Types never sent or received are left out: most replicas use a
		// few of the twenty, and a page of zeros hides the rest.
		if n := r.messagesSent[t].Load(); n > 0 {
			counter(descSent, n, messageTypeNames[t])
		}
		if n := r.messagesReceived[t].Load(); n > 0 {
			counter(descReceived, n, messageTypeNames[t])
		}
	}
	op := r.opNumber.Load()
	gauge(descOpNumber, float64(op))
	gauge(descCommitNumber, float64(r.commitNumber.Load()))
	gauge(descView, float64(r.view.Load()))
	gauge(descEpoch, float64(r.epoch.Load()))
	gauge(descUp, boolGauge(r.up.Load()))
	primary := r.primary.Load()
	gauge(descPrimary, boolGauge(primary))
	status, up := vsr.Status(r.status.Load()), r.up.Load()
	for _, s := range statuses {
		gauge(descStatus, boolGauge(up && s == status), s.String())
	}
	if primary {
		for backup, acked := range r.lag() {
			gauge(descLag, float64(op-min(op, acked)), itoa(backup))
		}
	}
}

// lag copies the backups' acknowledged op numbers.
func (r *replicaMetrics) lag() map[int]uint64 {
	r.ackMu.Lock()
	defer r.ackMu.Unlock()
	out := make(map[int]uint64, len(r.acked))
	for b, op := range r.acked {
		out[b] = op
	}
	return out
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func itoa(i int) string { return strconv.Itoa(i) }
