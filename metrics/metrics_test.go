package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/vsr"
)

// registered is a Metrics on a registry of its own.
func registered(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	m, reg := New(), prometheus.NewRegistry()
	require.NoError(t, reg.Register(m))
	return m, reg
}

// find is the metric of family name whose labels include want, or nil.
func find(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// value is the counter's or gauge's value; it fails the test if there is
// no such metric.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	m := find(t, reg, name, want)
	require.NotNil(t, m, "no %s %v", name, want)
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// samples is how many observations the histogram has had.
func samples(t *testing.T, reg *prometheus.Registry, name string, labels ...string) uint64 {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	m := find(t, reg, name, want)
	if m == nil {
		return 0
	}
	return m.GetHistogram().GetSampleCount()
}

// primaryOf3 is an observation of replica 0, the normal primary of view 0
// in a group of three, at op and commit.
func primaryOf3(kind actors.ObservationKind, op, commit uint64) actors.Observation {
	return actors.Observation{Kind: kind, Replica: 0, Index: 0, ReplicaCount: 3, Status: vsr.StatusNormal,
		OpNumber: op, CommitNumber: commit, Primary: true, Peer: -1}
}

func prepare(first, last uint64) *messages.Prepare {
	p := &messages.Prepare{}
	for op := first; op <= last; op++ {
		p.Entries = append(p.Entries, &messages.Entry{OpNumber: op})
	}
	return p
}

func TestCommitsCountOpsAndMeasureLatencyPerAppendedBatch(t *testing.T) {
	m, reg := registered(t)
	m.Observe(primaryOf3(actors.ObservedLeadershipStarted, 0, 0))
	m.Observe(primaryOf3(actors.ObservedReceived, 4, 0)) // four ops appended at once
	m.Observe(primaryOf3(actors.ObservedReceived, 6, 0)) // two more
	o := primaryOf3(actors.ObservedCommitAdvanced, 6, 4)
	o.Count = 4
	m.Observe(o)
	require.Equal(t, 4.0, value(t, reg, "vsr_ops_committed_total", "replica", "0"))
	require.Equal(t, uint64(1), samples(t, reg, "vsr_commit_latency_seconds", "replica", "0"),
		"the batch up to op 4 is committed, the one up to 6 is not")
	o = primaryOf3(actors.ObservedCommitAdvanced, 6, 6)
	o.Count = 2
	m.Observe(o)
	require.Equal(t, 6.0, value(t, reg, "vsr_ops_committed_total", "replica", "0"))
	require.Equal(t, uint64(2), samples(t, reg, "vsr_commit_latency_seconds", "replica", "0"))
	require.Equal(t, 6.0, value(t, reg, "vsr_commit_number", "replica", "0"))
	require.Equal(t, 1.0, value(t, reg, "vsr_is_primary", "replica", "0"))
}

func TestABatchIsCountedOncePerNewPrepareNotPerBackupOrRetransmission(t *testing.T) {
	m, reg := registered(t)
	for range 2 { // the same Prepare to both backups
		o := primaryOf3(actors.ObservedSent, 3, 0)
		o.Message, o.Size = prepare(1, 3), 300
		m.Observe(o)
	}
	o := primaryOf3(actors.ObservedSent, 3, 0) // a retransmission
	o.Message, o.Size = prepare(1, 3), 300
	m.Observe(o)
	o = primaryOf3(actors.ObservedSent, 4, 0)
	o.Message, o.Size = prepare(4, 4), 100
	m.Observe(o)
	require.Equal(t, uint64(2), samples(t, reg, "vsr_prepare_batch_ops", "replica", "0"))
	require.Equal(t, 4.0, value(t, reg, "vsr_messages_sent_total", "replica", "0", "type", "prepare"))
	require.Equal(t, uint64(4), samples(t, reg, "vsr_message_sent_bytes", "replica", "0", "type", "prepare"))
	h := find(t, reg, "vsr_prepare_batch_ops", map[string]string{"replica": "0"}).GetHistogram()
	require.Equal(t, 4.0, h.GetSampleSum(), "one batch of three ops and one of one")
}

func TestABackupThatStopsAcknowledgingLagsByEveryOpSince(t *testing.T) {
	m, reg := registered(t)
	m.Observe(primaryOf3(actors.ObservedLeadershipStarted, 10, 10))
	require.Equal(t, 0.0, value(t, reg, "vsr_backup_lag_ops", "replica", "0", "backup", "1"),
		"a new view's backups hold the primary's log")
	ok := primaryOf3(actors.ObservedReceived, 15, 10)
	ok.Message, ok.Peer = &messages.PrepareOK{OpNumber: 15, Replica: 1}, 1
	m.Observe(ok)
	m.Observe(primaryOf3(actors.ObservedReceived, 25, 15)) // backup 2 is silent, backup 1 too from now on
	require.Equal(t, 10.0, value(t, reg, "vsr_backup_lag_ops", "replica", "0", "backup", "1"))
	require.Equal(t, 15.0, value(t, reg, "vsr_backup_lag_ops", "replica", "0", "backup", "2"))
	require.Nil(t, find(t, reg, "vsr_backup_lag_ops", map[string]string{"backup": "0"}), "the primary is no backup of itself")

	stale := primaryOf3(actors.ObservedReceived, 25, 15) // an older acknowledgement arriving late
	stale.Message, stale.Peer = &messages.PrepareOK{OpNumber: 12, Replica: 1}, 1
	m.Observe(stale)
	require.Equal(t, 10.0, value(t, reg, "vsr_backup_lag_ops", "replica", "0", "backup", "1"))

	stopped := primaryOf3(actors.ObservedLeadershipStopped, 25, 15)
	stopped.Primary, stopped.Status = false, vsr.StatusViewChange
	m.Observe(stopped)
	require.Nil(t, find(t, reg, "vsr_backup_lag_ops", nil), "only a primary reports its backups' lag")
	require.Equal(t, 1.0, value(t, reg, "vsr_status", "replica", "0", "status", "view-change"))
	require.Equal(t, 0.0, value(t, reg, "vsr_status", "replica", "0", "status", "normal"))
	require.Equal(t, 0.0, value(t, reg, "vsr_is_primary", "replica", "0"))
}

func TestViewChangesTimeoutsDropsAndStateTransfersAreCounted(t *testing.T) {
	m, reg := registered(t)
	backup := actors.Observation{Replica: 2, Index: 2, ReplicaCount: 3, Status: vsr.StatusViewChange, View: 1, Peer: -1}
	for _, k := range []actors.ObservationKind{actors.ObservedPrimaryTimeout, actors.ObservedViewChangeStarted,
		actors.ObservedCheckpoint, actors.ObservedStateTransferred, actors.ObservedEpochChanged} {
		backup.Kind = k
		m.Observe(backup)
	}
	backup.Kind, backup.Reason, backup.Count = actors.ObservedDropped, vsr.DropOldEpoch, 3
	m.Observe(backup)
	backup.Kind, backup.Status = actors.ObservedViewChangeCompleted, vsr.StatusNormal
	m.Observe(backup)
	for name, want := range map[string]float64{"vsr_primary_timeouts_total": 1, "vsr_view_changes_total": 1,
		"vsr_view_changes_completed_total": 1, "vsr_checkpoints_total": 1, "vsr_state_transfers_total": 1,
		"vsr_epoch_changes_total": 1, "vsr_view": 1, "vsr_leaderships_total": 0} {
		require.Equal(t, want, value(t, reg, name, "replica", "2"), name)
	}
	require.Equal(t, 3.0, value(t, reg, "vsr_dropped_messages_total", "replica", "2", "reason", "old-epoch"))
	require.Equal(t, 0.0, value(t, reg, "vsr_dropped_messages_total", "replica", "2", "reason", "malformed"))
	require.Nil(t, find(t, reg, "vsr_ops_committed_total", map[string]string{"replica": "0"}),
		"a replica never observed has no series")
}

func TestOpDurationsAreObserved(t *testing.T) {
	m, reg := registered(t)
	o := primaryOf3(actors.ObservedOperationApplied, 1, 0)
	o.Duration = 3 * time.Millisecond
	m.Observe(o)
	h := find(t, reg, "vsr_apply_duration_seconds", map[string]string{"replica": "0"}).GetHistogram()
	require.Equal(t, uint64(1), h.GetSampleCount())
	require.InDelta(t, 0.003, h.GetSampleSum(), 1e-9)
}

func TestReplicaNumbersOutOfRangeAreIgnored(t *testing.T) {
	m, reg := registered(t)
	for _, r := range []int{-1, maxReplicas, 1 << 40} {
		o := primaryOf3(actors.ObservedCommitAdvanced, 1, 1)
		o.Replica, o.Count = r, 1
		m.Observe(o)
	}
	families, err := reg.Gather()
	require.NoError(t, err)
	require.Empty(t, families)
}

// The commit latency marks of a primary whose commits stall are bounded.
func TestAStalledPrimaryKeepsABoundedNumberOfLatencyMarks(t *testing.T) {
	m, _ := registered(t)
	for op := uint64(1); op <= 3*maxLatencyMarks; op++ {
		m.Observe(primaryOf3(actors.ObservedReceived, op, 0))
	}
	require.Len(t, m.replica(0).marks, maxLatencyMarks)
}

// Observe runs for every message a replica sends and receives: once the
// replica has been seen, it must not allocate.
func TestObserveDoesNotAllocate(t *testing.T) {
	m, _ := registered(t)
	sent := primaryOf3(actors.ObservedSent, 5, 4)
	sent.Message, sent.Size = &messages.Commit{}, 40
	ok := primaryOf3(actors.ObservedReceived, 5, 4)
	ok.Message, ok.Peer = &messages.PrepareOK{OpNumber: 5}, 1
	m.Observe(primaryOf3(actors.ObservedLeadershipStarted, 5, 4))
	allocs := testing.AllocsPerRun(1000, func() {
		m.Observe(sent)
		m.Observe(ok)
	})
	require.Zero(t, allocs)
}

func TestAStoppedReplicaIsDownAndNoLongerPrimary(t *testing.T) {
	m, reg := registered(t)
	m.Observe(primaryOf3(actors.ObservedLeadershipStarted, 5, 5))
	require.Equal(t, 1.0, value(t, reg, "vsr_replica_up", "replica", "0"))
	require.NotNil(t, find(t, reg, "vsr_backup_lag_ops", nil))
	m.Observe(primaryOf3(actors.ObservedStopped, 5, 5))
	require.Equal(t, 0.0, value(t, reg, "vsr_replica_up", "replica", "0"))
	require.Equal(t, 0.0, value(t, reg, "vsr_is_primary", "replica", "0"))
	require.Equal(t, 0.0, value(t, reg, "vsr_status", "replica", "0", "status", "normal"))
	require.Nil(t, find(t, reg, "vsr_backup_lag_ops", nil))
	require.Equal(t, 5.0, value(t, reg, "vsr_op_number", "replica", "0"), "the last state stays for the post-mortem")

	m.Observe(primaryOf3(actors.ObservedStatusChanged, 5, 5)) // a new instance reports
	require.Equal(t, 1.0, value(t, reg, "vsr_replica_up", "replica", "0"))
}

// A node's index changes when its group is reconfigured: a Metrics made
// for one replica keeps one series whatever the index.
func TestForReplicaKeepsOneSeriesAcrossIndexChanges(t *testing.T) {
	m, reg := ForReplica("10.0.0.7:7000"), prometheus.NewRegistry()
	require.NoError(t, reg.Register(m))
	for _, index := range []int{2, 0, 4} {
		o := primaryOf3(actors.ObservedCommitAdvanced, 1, 1)
		o.Replica, o.Index, o.Count = index, index, 1
		m.Observe(o)
	}
	require.Equal(t, 3.0, value(t, reg, "vsr_ops_committed_total", "replica", "10.0.0.7:7000"))
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "replica" {
					require.Equal(t, "10.0.0.7:7000", l.GetValue(), f.GetName())
				}
			}
		}
	}
}

// The primary of a new group is primary from its start: it reports no
// leadership change, and its backups' lag must be tracked all the same.
func TestTheFirstPrimaryOfANewGroupTracksItsBackups(t *testing.T) {
	m, reg := registered(t)
	hb := primaryOf3(actors.ObservedSent, 0, 0)
	hb.Message = &messages.Commit{}
	m.Observe(hb)
	m.Observe(primaryOf3(actors.ObservedReceived, 7, 0))
	require.Equal(t, 7.0, value(t, reg, "vsr_backup_lag_ops", "replica", "0", "backup", "2"))
	require.Equal(t, 0.0, value(t, reg, "vsr_leaderships_total", "replica", "0"), "it never became primary: it was")
}
