package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vsrgo/vsr/messages"
)

// Epochs (docs/reconfiguration.md): every replica message carries its
// sender's epoch, and a replica drops one from another epoch before any
// handler reads it, because the sender's index names a member only in the
// sender's own epoch's configuration.

// uStamp returns a copy of m stamped with epoch e.
func uStamp(m proto.Message, e uint64) proto.Message {
	m = proto.Clone(m)
	mr := m.ProtoReflect()
	mr.Set(mr.Descriptor().Fields().ByName("epoch"), protoreflect.ValueOfUint64(e))
	return m
}

// uAtEpoch puts r in epoch e, as if e reconfigurations had committed before
// the history a test starts from.
func uAtEpoch(r *Replica, e uint64) { r.epoch, r.hardState.Epoch = e, e }

func TestEpoch_MessagesFromAnotherEpochAreDroppedUnread(t *testing.T) {
	log := uLog(1, 2, 1)
	msgs := []proto.Message{
		uPrepare(1, 1, 0, uEntry(1, 1)),
		uPrepareOK(1, 1, 2),
		uCommit(1, 0, 1),
		uSVC(2, 2),
		uDVC(2, 2, 1, 0, log),
		uStartView(2, 2, 0, log),
		uNewState(1, 1, 0, log, 2),
		&messages.GetState{ClusterId: uCluster, View: 1, Replica: 2},
		&messages.Recovery{ClusterId: uCluster, Replica: 2, Nonce: 9},
		&messages.ConfirmView{ClusterId: uCluster, View: 1, Round: 1, Replica: 1},
		&messages.ViewChangeProbe{ClusterId: uCluster, View: 2, Replica: 2},
	}
	for _, m := range msgs {
		for _, c := range []struct {
			epoch uint64
			want  DropReason
		}{{0, DropOldEpoch}, {2, DropNewEpoch}} {
			r, _ := uReplica(t, 3, 0)
			uAtEpoch(r, 1)
			out := r.Step(uStamp(m, c.epoch))
			uOnly(t, r, out, c.want)
			assert.Equal(t, StatusNormal, r.Status(), "%T from epoch %d", m, c.epoch)
			assert.Equal(t, uint64(0), r.View(), "%T from epoch %d", m, c.epoch)
			assert.Equal(t, uint64(0), r.OpNumber(), "%T from epoch %d", m, c.epoch)
		}
	}
}

// The same messages from the replica's own epoch get past admission (the
// control for the test above: a handler ran, or the drop was for another
// reason than the epoch).
func TestEpoch_MessagesFromTheSameEpochAreAdmitted(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	uAtEpoch(r, 1)
	uStep(t, r, uStamp(uPrepare(0, 0, 0, uEntry(1, 0)), 1))
	assert.Equal(t, uint64(1), r.OpNumber())
	assert.Equal(t, uint64(0), r.Drops().Total())
}

// Every message a group sends, and every reply, carries the sender's epoch.
func TestEpoch_EveryMessageAndReplyIsStamped(t *testing.T) {
	nw := newNetwork(t, 3)
	for _, r := range nw.replicas {
		r.epoch = 4 // written to the test's disk with the next output
	}
	nw.clientEpoch = 4
	seen := map[string]bool{}
	nw.watch = func(p packet) {
		rm, ok := p.msg.(replicaMessage)
		require.True(t, ok, "%T", p.msg)
		require.Equal(t, uint64(4), rm.GetEpoch(), "%v", p)
		seen[string(proto.MessageName(p.msg))] = true
	}
	nw.register(0, 1)
	nw.put(0, 1, 2, "a", "1")
	nw.isolate(0)
	nw.run(60)
	nw.heal()
	nw.run(20)
	nw.put(nw.primary(), 1, 3, "b", "2")
	require.NotEmpty(t, nw.replies)
	for _, rep := range nw.replies {
		assert.Equal(t, uint64(4), rep.Epoch)
	}
	for _, name := range []string{"vsr.Prepare", "vsr.PrepareOK", "vsr.StartViewChange", "vsr.DoViewChange", "vsr.StartView"} {
		assert.True(t, seen[name], "no %s was sent: the test did not cover it", name)
	}
	assert.Equal(t, "1", nw.value(nw.primary(), "a"))
}

func TestEpoch_ConfigMembersAreValidated(t *testing.T) {
	for _, c := range []struct {
		name    string
		members []string
	}{
		{"too few", []string{"a", "b"}},
		{"too many", []string{"a", "b", "c", "d"}},
		{"empty name", []string{"a", "", "c"}},
		{"duplicate", []string{"a", "b", "a"}},
		{"long name", []string{"a", "b", string(make([]byte, 256))}},
	} {
		cfg := uValidConfig()
		cfg.ReplicaCount = 3
		cfg.Members = c.members
		assert.ErrorIs(t, cfg.Validate(), ErrMembers, c.name)
	}
	cfg := uValidConfig()
	cfg.ReplicaCount, cfg.ReplicaIndex, cfg.Members = 3, 1, []string{"a:1", "b:2", "c:3"}
	require.NoError(t, cfg.Validate())
	r, err := New(cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"a:1", "b:2", "c:3"}, r.Members())
	assert.Equal(t, uint64(0), r.Epoch())
	cfg.Members = nil
	r, err = New(cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"0", "1", "2"}, r.Members(), "without names, members are named by index")
}
