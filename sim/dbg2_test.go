package sim
import ("testing";"fmt";"os";"strconv";"strings")
func TestDbgOne(t *testing.T) {
	seed, _ := strconv.Atoi(os.Getenv("SEED")); n, _ := strconv.Atoi(os.Getenv("N"))
	o := DefaultOptions(uint64(seed)); o.Replicas = n; o.TraceEvents = 1000000


	r := RunReconfig(o)
	fmt.Println(r.Violation)
	lines := r.Trace
	who := os.Getenv("WHO")
	for i, l := range lines {
		if !strings.Contains(l, "deliver") || (who != "" && strings.Contains(l, who)) {
			if i > len(lines)-int(func() int { k, _ := strconv.Atoi(os.Getenv("LAST")); if k == 0 { return 1 << 30 }; return k }()) { fmt.Println(l) }
		}
	}
}
