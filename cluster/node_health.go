package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/vsr"
)

// ErrNotReady is wrapped by Node.Ready's error when the replica runs but
// does not serve.
var ErrNotReady = errors.New("vsr: replica not ready")

// Status asks the node's replica for its status (without a digest). It
// fails if the replica does not answer before ctx ends (2 s if ctx has no
// deadline): the replica is down, restarting, or stuck.
func (n *Node) Status(ctx context.Context) (actors.ReplicaStatus, error) {
	timeout := 2 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 || n.system.IsStopped() {
		return actors.ReplicaStatus{}, fmt.Errorf("vsr: replica did not answer: %w", context.DeadlineExceeded)
	}
	res, err := n.system.Root.RequestFuture(n.self, &actors.StatusQuery{}, timeout).Result()
	if err != nil {
		return actors.ReplicaStatus{}, fmt.Errorf("vsr: replica did not answer: %w", err)
	}
	st, ok := res.(actors.ReplicaStatus)
	if !ok {
		return actors.ReplicaStatus{}, fmt.Errorf("vsr: replica answered %T", res)
	}
	return st, nil
}

// Ready returns nil when the node's replica serves: it is normal in its
// current view, as primary or backup. Otherwise it says why not (view
// change, recovery, joining, leaving, or no answer), wrapping ErrNotReady
// for a replica that answered.
func (n *Node) Ready(ctx context.Context) error {
	st, err := n.Status(ctx)
	if err != nil {
		return err
	}
	if st.Status != vsr.StatusNormal {
		return fmt.Errorf("%w: %s in view %d of epoch %d", ErrNotReady, st.Status, st.View, st.Epoch)
	}
	return nil
}
