package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// uOnly asserts that exactly one message was dropped, for reason want, and
// that the step did nothing else.
func uOnly(t *testing.T, r *Replica, out Output, want DropReason) {
	t.Helper()
	assert.True(t, out.IsEmpty(), "a dropped message has no effect: %+v", out)
	assert.Equal(t, uint64(1), r.Drops()[want], "reason %v", want)
	assert.Equal(t, uint64(1), r.Drops().Total())
}

func TestDrops_WrongClusterIsCounted(t *testing.T) {
	msgs := []proto.Message{
		uPrepare(0, 0, 0, uEntry(1, 0)),
		uCommit(0, 0, 0),
		uSVC(1, 2),
		uReq(1, 1, kv.PutOp("a", []byte("1"))),
	}
	for _, m := range msgs {
		r, _ := uReplica(t, 3, 1)
		m = proto.Clone(m)
		mr := m.ProtoReflect()
		mr.Set(mr.Descriptor().Fields().ByName("cluster_id"), protoreflect.ValueOfUint64(uCluster+1))
		out := r.Step(m)
		uOnly(t, r, out, DropWrongCluster)
		assert.Equal(t, uint64(0), r.OpNumber(), "%T", m)
		assert.Equal(t, uint64(0), r.View(), "%T", m)
	}
}

func TestDrops_SenderOutsideConfigurationOrSelfIsBadReplica(t *testing.T) {
	for _, from := range []int{3, 200, 1} {
		r, _ := uReplica(t, 3, 1)
		out := r.Step(uSVC(1, from))
		uOnly(t, r, out, DropBadReplica)
		assert.Equal(t, StatusNormal, r.Status(), "from %d", from)
	}
	p, _ := uPrimary(t, 3, 0, 1)
	out := p.Step(uPrepareOK(0, 1, 3))
	uOnly(t, p, out, DropBadReplica)
	assert.Equal(t, uint64(0), p.CommitNumber(), "an ack from outside the group commits nothing")
}

func TestDrops_NilMessageIsCountedMalformed(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	out := r.Step(nil)
	uOnly(t, r, out, DropMalformed)
}

func TestDrops_UnknownMessageTypeIsCounted(t *testing.T) {
	for _, m := range []proto.Message{&messages.Entry{OpNumber: 1}, &messages.Reply{}, &messages.Checkpoint{}, &messages.ClientSession{ClientId: 1}} {
		r, _ := uReplica(t, 3, 1)
		out := r.Step(m)
		uOnly(t, r, out, DropUnknownMessage)
	}
}

func TestDrops_CountsAccumulateByReason(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	r.Step(nil)
	r.Step(nil)
	r.Step(&messages.Entry{})
	d := r.Drops()
	assert.Equal(t, uint64(2), d[DropMalformed])
	assert.Equal(t, uint64(1), d[DropUnknownMessage])
	assert.Equal(t, uint64(3), d.Total())
	require.Equal(t, "malformed", DropMalformed.String())
	assert.Equal(t, "wrong-cluster", DropWrongCluster.String())
	assert.Equal(t, "bad-replica", DropBadReplica.String())
	assert.Equal(t, "unknown-message", DropUnknownMessage.String())
}
