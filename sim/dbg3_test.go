package sim
import ("testing";"fmt";"os";"strconv";"google.golang.org/protobuf/proto";"github.com/vsrgo/vsr/messages")
func TestDbgState(t *testing.T) {
	seed, _ := strconv.Atoi(os.Getenv("SEED")); n, _ := strconv.Atoi(os.Getenv("N"))
	o := DefaultOptions(uint64(seed)); o.Replicas = n; o.TraceEvents = 100
	w := newWorld(o)
	stop, _ := strconv.Atoi(os.Getenv("STOP"))
	for w.now < o.Ticks && w.violation == nil && (stop == 0 || w.now < stop) { w.injectFaults(); w.admin.step(); w.tick() }
	fmt.Println(w.violation)
	for i, nd := range w.nodes { if nd.r != nil { r := nd.r; fmt.Println(nodeName(i), r.Status(), "e", r.Epoch(), "v", r.View(), "op", r.OpNumber(), "k", r.CommitNumber(), "base", r.LogBase(), "cp", r.CheckpointOpNumber(), r.Members()) } else { fmt.Println(nodeName(i), "down/left", nd.left) } }
	for e, ep := range w.epochs { fmt.Println("epoch", e, ep.members, ep.op) }
	for op := uint64(1); op < 80; op++ { if e := w.committed[op]; e != nil && e.Reconfigure != nil { fmt.Println("reconfig at", op, e.Reconfigure.Members) } }
}

func TestDbgDisk(t *testing.T) {
	o := DefaultOptions(627); o.Replicas = 3; o.TraceEvents = 100
	w := newWorld(o)
	for w.now < 374 { w.injectFaults(); w.admin.step(); w.tick() }
	st, err := w.openDisk(3)
	fmt.Println(err, st.HardState)
	if st.Checkpoint != nil {
		var cp messages.Checkpoint
		_ = proto.Unmarshal(st.Checkpoint.Bytes(), &cp)
		fmt.Println("cp", cp.OpNumber, cp.Epoch, cp.EpochOp, cp.Members, cp.PreviousMembers)
	}
	for _, e := range st.Entries { if e.Reconfigure != nil { fmt.Println("entry reconfig", e.OpNumber, e.Reconfigure.Members) } }
	fmt.Println("entries", len(st.Entries))
}
