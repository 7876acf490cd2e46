package vsr

// timer counts ticks down to a deadline. Time reaches the core only as ticks,
// so a timer is a counter, not a clock.
type timer struct {
	left    int
	running bool
}

func (t *timer) start(ticks int) { t.left, t.running = ticks, true }

func (t *timer) stop() { t.running = false }

// tick advances the timer and reports whether it fired. A fired timer stops.
func (t *timer) tick() bool {
	if !t.running {
		return false
	}
	t.left--
	if t.left > 0 {
		return false
	}
	t.running = false
	return true
}
