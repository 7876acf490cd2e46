package sim
import ("testing";"fmt";"os";"strconv";"strings")
func TestDbgMany(t *testing.T) {
	from, _ := strconv.Atoi(os.Getenv("FROM")); to, _ := strconv.Atoi(os.Getenv("TO"))
	fails := 0
	for seed := from; seed <= to; seed++ {
		for _, n := range []int{3, 5} {
			o := DefaultOptions(uint64(seed)); o.Replicas = n
			r := RunReconfig(o)
			if r.Violation != nil { fails++; fmt.Printf("seed %d n=%d: %v\n", seed, n, strings.SplitN(r.Violation.Error(), "\n", 2)[0]); if fails > 10 { return } }
		}
	}
}
