package vsr

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// Review item 8: the configuration has each replica once, and a replica
// never counts itself twice. Messages claiming to come from this replica, or
// from an index outside the configuration, are dropped, and the primary of
// view v is v mod n on every replica.
func TestReplicaNeverCountsItselfAndRejectsUnknownSenders(t *testing.T) {
	nw := newNetwork(t, 3)
	r := nw.replicas[1]
	r.Step(&messages.StartViewChange{ClusterId: testCluster, View: 1, Replica: 1})
	r.Step(&messages.StartViewChange{ClusterId: testCluster, View: 1, Replica: 3})
	require.Equal(t, uint64(0), r.View(), "neither vote was counted")
	require.Equal(t, uint64(2), r.Drops()[DropBadReplica])
	for v := uint64(0); v < 7; v++ {
		for _, rep := range nw.replicas {
			require.Equal(t, int(v%3), rep.primaryOf(v))
		}
	}
}

// Review item 4: a request forwarded by a backup is answered to the address
// inside the request, which is the client's, not the forwarding replica's.
func TestForwardedRequestIsAnsweredToTheClientAddress(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	addr := &messages.ClientAddress{Address: "node-9:4000", Id: "client-42"}
	req := request(1, 2, kv.PutOp("a", []byte("1")))
	req.ReplyTo, req.Session = addr, nw.sessions[1]
	var replies []ClientReply
	out := nw.replicas[2].Step(req)
	require.Len(t, out.Messages, 1)
	out = nw.replicas[0].Step(out.Messages[0].Msg)
	for _, env := range out.Messages {
		out2 := nw.replicas[env.To].Step(env.Msg)
		for _, back := range out2.Messages {
			replies = append(replies, nw.replicas[back.To].Step(back.Msg).Replies...)
		}
	}
	require.NotEmpty(t, replies)
	for _, rep := range replies {
		require.Equal(t, addr.Address, rep.To.Address)
		require.Equal(t, addr.Id, rep.To.Id)
	}
}
