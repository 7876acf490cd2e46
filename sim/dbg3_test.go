package sim
import ("testing";"fmt";"os";"strconv")
func TestDbgState(t *testing.T) {
	seed, _ := strconv.Atoi(os.Getenv("SEED")); n, _ := strconv.Atoi(os.Getenv("N"))
	o := DefaultOptions(uint64(seed)); o.Replicas = n; o.TraceEvents = 100
	w := newWorld(o)
	for w.now < o.Ticks && w.violation == nil { w.injectFaults(); w.admin.step(); w.tick() }
	if w.violation == nil { w.heal(); w.violation = w.awaitConverged(o.LivenessTicks) }
	fmt.Println(w.violation, "durable", w.durable)
	for i, nd := range w.nodes { if nd.r != nil { r := nd.r; fmt.Println(nodeName(i), r.Status(), "e", r.Epoch(), "v", r.View(), "op", r.OpNumber(), "k", r.CommitNumber(), "base", r.LogBase(), "cp", r.CheckpointOpNumber(), r.Members(), r.Drops()) } else { fmt.Println(nodeName(i), "down/left", nd.left) } }
	for e, ep := range w.epochs { fmt.Println("epoch", e, ep.members, ep.op) }
	for _, l := range tail(w.trace.lines(), 12) { fmt.Println(l) }
}
