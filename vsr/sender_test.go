package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// TestSenderOf_NamesTheSenderInItsOwnEpoch: a transport checks a message's
// sender against the member SenderOf names, so the name must come from the
// configuration of the message's own epoch: index 2 is c in epoch 0 and d in
// epoch 1. A message the replica cannot attribute (a later epoch, an index
// past the configuration) is unknown, and a StartEpoch names its sender in
// the configuration it carries.
func TestSenderOf_NamesTheSenderInItsOwnEpoch(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "d")
	g.register()
	g.reconfigure(2, "a", "b", "d")
	g.run(3 * DefaultHeartbeatTicks)
	g.requireEpoch(1, "a", "b", "d")
	r := g.r("a")

	cases := []struct {
		m     proto.Message
		name  string
		known bool
	}{
		{&messages.Commit{ClusterId: uCluster, Epoch: 1, Replica: 2}, "d", true},
		{&messages.Commit{ClusterId: uCluster, Epoch: 0, Replica: 2}, "c", true},
		{&messages.Commit{ClusterId: uCluster, Epoch: 2, Replica: 2}, "", false},
		{&messages.Commit{ClusterId: uCluster, Epoch: 1, Replica: 3}, "", false},
		{&messages.EpochStarted{ClusterId: uCluster, Epoch: 1, Replica: 1}, "b", true},
		{&messages.StartEpoch{ClusterId: uCluster, Epoch: 1, SenderEpoch: 0, Replica: 2,
			PreviousMembers: []string{"a", "b", "c"}, Members: []string{"a", "b", "d"}}, "c", true},
		{&messages.StartEpoch{ClusterId: uCluster, Epoch: 1, SenderEpoch: 1, Replica: 2,
			PreviousMembers: []string{"a", "b", "c"}, Members: []string{"a", "b", "d"}}, "d", true},
		{&messages.Request{ClusterId: uCluster}, "", false},
	}
	for _, c := range cases {
		name, known := r.SenderOf(c.m)
		assert.Equal(t, c.name, name, "%T %v", c.m, c.m)
		assert.Equal(t, c.known, known, "%T %v", c.m, c.m)
	}
}
