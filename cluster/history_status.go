package cluster

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vsrgo/vsr/actors"
)

// StatusWithMemory is StatusWithoutDigest with each replica's process heap
// in use (StatusReply.HeapInUse): every replica runs a garbage collection
// first, which stalls it for the collection, so this is for diagnostics
// such as `vsr history`, not for polling. A replica that does not answer
// within timeout has a nil entry.
func (c *Client) StatusWithMemory(timeout time.Duration) []*actors.StatusReply {
	out := make([]*actors.StatusReply, len(c.cfg.Replicas))
	pids := c.cfg.PeerPIDs()
	futures := make([]*actor.Future, len(pids))
	for j, pid := range pids {
		futures[j] = c.system.Root.RequestFuture(pid, &actors.StatusRequest{WithMemory: true}, timeout)
	}
	for j, f := range futures {
		if res, err := f.Result(); err == nil {
			out[j], _ = res.(*actors.StatusReply)
		}
	}
	return out
}
