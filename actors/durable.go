package actors

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

// A replica with a disk (ReplicaConfig.OpenStore): how an instance comes
// back from its store, and how each step's output reaches it before the
// step's messages leave (persist.go).

// storageFailed tells instance gen that its store failed a write.
type storageFailed struct {
	gen uint64
	err error
}

// startFromStore opens and loads the store and makes the core from it: a
// new replica if the store holds nothing, otherwise one restarted from what
// it holds (vsr.Restart decides whether it can trust it). What the restart
// asks to be durable is written before the replica takes any step.
func (a *replicaActor) startFromStore(ctx actor.Context, cfg vsr.Config) (*vsr.Replica, bool, error) {
	store, err := a.cfg.OpenStore()
	if err != nil {
		return nil, false, fmt.Errorf("opening storage: %w", err)
	}
	st, err := store.Load()
	if err != nil {
		_ = store.Close()
		return nil, false, fmt.Errorf("loading storage: %w", err)
	}
	var core *vsr.Replica
	var out vsr.Output
	fromDisk := !st.IsNew()
	if fromDisk {
		if st.Damage != nil {
			a.logger().Warn("vsr: storage damaged; keeping the committed prefix and recovering the rest from peers",
				"replica", cfg.ReplicaIndex, "damage", st.Damage)
		}
		core, out, err = vsr.Restart(cfg, storage.DurableStateOf(st))
	} else {
		core, err = vsr.New(cfg)
	}
	if err == nil {
		err = storage.WriteChanges(store, []storage.Change{storage.ChangeOf(out)})
	}
	if err != nil {
		_ = store.Close()
		return nil, false, err
	}
	self, gen, root := ctx.Self(), a.gen, ctx.ActorSystem().Root
	a.store = store
	a.persister = newPersister(store, func(err error) { root.Send(self, &storageFailed{gen: gen, err: err}) })
	return core, fromDisk, nil
}

// persist hands out to the persister: its durable change first, then its
// messages and replies, which leave once the change is durable. A step with
// nothing durable, while nothing is queued before it, sends at once.
func (a *replicaActor) persist(ctx actor.Context, out vsr.Output) {
	change := storage.ChangeOf(out)
	sends := a.allowedSends(out)
	if change.IsEmpty() && a.persister.idle() {
		for _, s := range sends {
			s.send(ctx)
		}
		return
	}
	if change.IsEmpty() && len(sends) == 0 {
		return
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	a.persister.submit(persistJob{change: change, send: func() {
		for _, s := range sends {
			s.sendFrom(root, self)
		}
	}})
}

// outgoing is one message or reply that passed the size check.
type outgoing struct {
	to    *actor.PID
	msg   proto.Message
	reply bool
}

func (o outgoing) send(ctx actor.Context) {
	if o.reply {
		ctx.Send(o.to, o.msg)
	} else {
		ctx.Request(o.to, o.msg) // with this actor as sender: see fromPeer
	}
}

func (o outgoing) sendFrom(root *actor.RootContext, self *actor.PID) {
	if o.reply {
		root.Send(o.to, o.msg)
	} else {
		root.RequestWithCustomSender(o.to, o.msg, self)
	}
}

// allowedSends checks out's messages and replies against MaxMessageBytes
// on the actor's goroutine (the counters are the actor's).
func (a *replicaActor) allowedSends(out vsr.Output) []outgoing {
	sends := make([]outgoing, 0, len(out.Messages)+len(out.Replies))
	for _, env := range out.Messages {
		if to := a.target(env); to != nil && a.allow(env.Msg, to) {
			sends = append(sends, outgoing{to: to, msg: env.Msg})
		}
	}
	for _, r := range out.Replies {
		to := actor.NewPID(r.To.Address, r.To.Id)
		if a.allow(r.Reply, to) {
			sends = append(sends, outgoing{to: to, msg: r.Reply, reply: true})
		}
	}
	return sends
}

// runCheckpoint encodes a checkpoint on its own goroutine, saves it to the
// store if there is one (before the core hears of it: the core then trims
// its log, and the store may compact below it), and hands the result back.
func (a *replicaActor) runCheckpoint(ctx actor.Context, job *vsr.CheckpointJob) {
	self, gen, root, store := ctx.Self(), a.gen, ctx.ActorSystem().Root, a.store
	go func() {
		res := job.Run()
		if store != nil && res.Err == nil {
			head, state := res.Parts()
			if err := store.SaveCheckpoint(storage.Checkpoint{OpNumber: res.OpNumber, Head: head, State: state}); err != nil {
				root.Send(self, &storageFailed{gen: gen, err: err})
				return
			}
		}
		root.Send(self, &checkpointDone{gen: gen, res: res})
	}()
}

// onStorageFailed stops the replica for good: a store that failed a write
// holds an unknown state, and the replica must not acknowledge what may not
// be written. Its supervisor does not restart it (a stop is not a failure);
// the operator sees the error.
func (a *replicaActor) onStorageFailed(ctx actor.Context, m *storageFailed) {
	if m.gen != a.gen || a.core == nil {
		return
	}
	i := a.core.Index()
	a.logger().Error("vsr: replica stopped: its storage failed", "replica", i, "err", m.err)
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(Event{Replica: i, Status: a.core.Status(), View: a.core.View(),
			Failed: fmt.Errorf("vsr: replica %d stopped: storage failed: %w", i, m.err)})
	}
	a.core = nil
	ctx.Stop(ctx.Self())
}

// closeStore stops the persister (what it has not written is dropped, as a
// crash would drop it) and closes the store.
func (a *replicaActor) closeStore() {
	if a.persister != nil {
		a.persister.stop()
		a.persister = nil
	}
	if a.store != nil {
		_ = a.store.Close()
		a.store = nil
	}
}
