package sim

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// trace keeps the last events of a run in a ring, cheaply: an event is
// formatted only when the trace is printed.
type trace struct {
	events []event
	next   int
	full   bool
}

type event struct {
	tick     int
	what     string // "deliver", "crash", "restart", "partition", ...
	from, to node
	msg      proto.Message
	note     string
}

func newTrace(size int) *trace { return &trace{events: make([]event, max(size, 1))} }

func (t *trace) add(e event) {
	t.events[t.next] = e
	t.next++
	if t.next == len(t.events) {
		t.next, t.full = 0, true
	}
}

// lines formats the events, oldest first.
func (t *trace) lines() []string {
	var out []string
	emit := func(e event) { out = append(out, e.String()) }
	if t.full {
		for _, e := range t.events[t.next:] {
			emit(e)
		}
	}
	for _, e := range t.events[:t.next] {
		emit(e)
	}
	return out
}

func (a node) String() string {
	if a.isClient() {
		return fmt.Sprintf("c%d", int(a-clientBase))
	}
	return fmt.Sprintf("r%d", int(a))
}

func (e event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%-6d %-9s", e.tick, e.what)
	if e.msg != nil {
		fmt.Fprintf(&b, " %s->%s %s", e.from, e.to, describe(e.msg))
	}
	if e.note != "" {
		b.WriteString(" " + e.note)
	}
	return b.String()
}

// describe is a one-line summary of a protocol message.
func describe(m proto.Message) string {
	switch m := m.(type) {
	case *messages.Request:
		return fmt.Sprintf("Request c=%d s=%d %s", m.ClientId, m.RequestNumber, m.ReadMode)
	case *messages.Reply:
		return fmt.Sprintf("Reply v=%d c=%d s=%d err=%s stale=%t", m.View, m.ClientId, m.RequestNumber, m.Error, m.Stale)
	case *messages.Prepare:
		first, last := uint64(0), uint64(0)
		if len(m.Entries) > 0 {
			first, last = m.Entries[0].OpNumber, m.Entries[len(m.Entries)-1].OpNumber
		}
		return fmt.Sprintf("Prepare v=%d ops=%d..%d k=%d", m.View, first, last, m.CommitNumber)
	case *messages.PrepareOK:
		return fmt.Sprintf("PrepareOK v=%d n=%d", m.View, m.OpNumber)
	case *messages.Commit:
		return fmt.Sprintf("Commit v=%d k=%d", m.View, m.CommitNumber)
	case *messages.StartViewChange:
		return fmt.Sprintf("StartViewChange v=%d", m.View)
	case *messages.DoViewChange:
		return fmt.Sprintf("DoViewChange v=%d lnv=%d n=%d k=%d", m.View, m.LastNormalView, m.OpNumber, m.CommitNumber)
	case *messages.StartView:
		return fmt.Sprintf("StartView v=%d n=%d k=%d", m.View, m.OpNumber, m.CommitNumber)
	case *messages.Recovery:
		return fmt.Sprintf("Recovery x=%x", m.Nonce)
	case *messages.RecoveryResponse:
		return fmt.Sprintf("RecoveryResponse v=%d primary=%t n=%d k=%d", m.View, m.FromPrimary, m.OpNumber, m.CommitNumber)
	case *messages.GetState:
		return fmt.Sprintf("GetState v=%d after=%d committed=%t", m.View, m.OpNumber, m.CommittedOnly)
	case *messages.NewState:
		return fmt.Sprintf("NewState v=%d entries=%d n=%d k=%d committed=%t checkpoint=%d", m.View, len(m.Entries),
			m.OpNumber, m.CommitNumber, m.CommittedOnly, m.CheckpointOpNumber)
	case *messages.GetCheckpoint:
		return fmt.Sprintf("GetCheckpoint op=%d chunk=%d", m.OpNumber, m.Chunk)
	case *messages.CheckpointChunk:
		return fmt.Sprintf("CheckpointChunk op=%d chunk=%d/%d bytes=%d", m.OpNumber, m.Chunk, m.Chunks, len(m.Data))
	case *messages.ConfirmView:
		return fmt.Sprintf("ConfirmView v=%d round=%d", m.View, m.Round)
	case *messages.ViewChangeProbe:
		return fmt.Sprintf("ViewChangeProbe v=%d", m.View)
	case *messages.ViewChangeProbeOK:
		return fmt.Sprintf("ViewChangeProbeOK v=%d", m.View)
	case *messages.ConfirmViewOK:
		return fmt.Sprintf("ConfirmViewOK v=%d round=%d", m.View, m.Round)
	}
	return fmt.Sprintf("%T", m)
}
