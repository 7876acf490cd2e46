package sim

import (
	"errors"
	"fmt"
)

// Faults is the fault mix of a simulation: the largest rate of each fault.
// Each seed draws its own rates between zero and these, so that a run of
// many seeds covers quiet and stormy schedules alike.
type Faults struct {
	// Drop is the chance that a message is lost (at most 0.3).
	Drop float64
	// Duplicate is the chance that a message is delivered twice (at most 0.5).
	Duplicate float64
	// MaxDelay is the largest delivery delay, in ticks; delays between 1 and
	// MaxDelay reorder messages.
	MaxDelay int
	// Partition is the chance per tick that a partition starts when there is
	// none; PartitionTicks is the longest it lasts.
	Partition      float64
	PartitionTicks int
	// Crash is the chance per tick that a replica crashes (never more than f
	// down or recovering at once); a crashed replica restarts empty within
	// RestartTicks and runs VR recovery.
	Crash        float64
	RestartTicks int
	// ClockSkew is the chance that a replica misses a tick, so that replicas'
	// clocks drift apart.
	ClockSkew float64

	// Gray is the chance per tick that a long gray failure starts when none
	// is under way: the primary's inbound links cut (it sends but hears no
	// peer), a backup's outbound links cut (it hears but is not heard), or
	// a replica flapping, cut off and connected in turn. GrayTicks is the
	// longest one lasts.
	Gray      float64
	GrayTicks int
	// Forge is the chance per tick that a Byzantine-ish peer sends a
	// replica a well-formed message with extreme fields: views and op
	// numbers near the top of the range, commit numbers far past any log,
	// sender indexes that are not the sender's.
	Forge float64
	// Hold is the chance that a message is held back for up to HoldTicks
	// and delivered long after its sender moved on: across view changes,
	// and after its sender crashed and restarted.
	Hold      float64
	HoldTicks int
	// Replay is the chance per tick that the network delivers again a copy
	// of a message it delivered long ago, of another view than its
	// receiver's: an earlier view's PrepareOK or read confirmation, a
	// StartView of a view since left, an answer to an earlier recovery
	// (replay.go).
	Replay float64
	// Durable is the share of seeds whose replicas keep disks (disk.go):
	// a crashed replica comes back from its disk instead of recovering
	// from its peers, and the whole group may crash at once.
	Durable float64
	// DiskFault is the chance that a crash tears the write under way, or
	// that a restart finds a record corrupted, a file missing or the disk
	// wiped; never more than f replicas carry a disk fault at once.
	DiskFault float64
	// GroupCrash is the chance per tick, in seeds with disks, that every
	// replica crashes at once (a power cut), each restarting within
	// RestartTicks.
	GroupCrash float64
}

// DefaultFaults is a stormy mix that still lets a group make progress.
var DefaultFaults = Faults{
	Drop: 0.1, Duplicate: 0.1, MaxDelay: 6,
	Partition: 0.01, PartitionTicks: 300,
	Crash: 0.004, RestartTicks: 200,
	ClockSkew: 0.2,
	Gray:      0.005, GrayTicks: 1500,
	Forge: 0.05,
	Hold:  0.01, HoldTicks: 400,
	Replay:  0.1,
	Durable: 0.67, DiskFault: 0.4, GroupCrash: 0.001,
}

// ErrFaults reports a fault mix out of range.
var ErrFaults = errors.New("sim: fault mix out of range")

// Validate reports the first rate out of range.
func (f Faults) Validate() error {
	switch {
	case f.Drop < 0 || f.Drop > 0.3:
		return fmt.Errorf("%w: drop %.2f not in [0, 0.3]", ErrFaults, f.Drop)
	case f.Duplicate < 0 || f.Duplicate > 0.5:
		return fmt.Errorf("%w: duplicate %.2f not in [0, 0.5]", ErrFaults, f.Duplicate)
	case f.MaxDelay < 1 || f.MaxDelay > 1000:
		return fmt.Errorf("%w: max delay %d not in [1, 1000]", ErrFaults, f.MaxDelay)
	case f.Partition < 0 || f.Partition > 1 || f.Crash < 0 || f.Crash > 1 || f.ClockSkew < 0 || f.ClockSkew > 0.9:
		return fmt.Errorf("%w: partition %.3f, crash %.3f (both in [0, 1]), clock skew %.2f (in [0, 0.9])",
			ErrFaults, f.Partition, f.Crash, f.ClockSkew)
	case f.PartitionTicks < 1 || f.RestartTicks < 1:
		return fmt.Errorf("%w: partition and restart durations must be at least 1 tick", ErrFaults)
	case f.Gray < 0 || f.Gray > 1 || f.Forge < 0 || f.Forge > 1 || f.Replay < 0 || f.Replay > 1 ||
		f.Hold < 0 || f.Hold > 0.1:
		return fmt.Errorf("%w: gray %.3f, forge %.3f, replay %.3f (each in [0, 1]), hold %.3f (in [0, 0.1])",
			ErrFaults, f.Gray, f.Forge, f.Replay, f.Hold)
	case f.Durable < 0 || f.Durable > 1 || f.DiskFault < 0 || f.DiskFault > 1 || f.GroupCrash < 0 || f.GroupCrash > 0.1:
		return fmt.Errorf("%w: durable %.2f, disk fault %.2f (both in [0, 1]), group crash %.4f (in [0, 0.1])",
			ErrFaults, f.Durable, f.DiskFault, f.GroupCrash)
	case (f.Gray > 0 && f.GrayTicks < 1) || (f.Hold > 0 && f.HoldTicks < 1) || f.HoldTicks > 100000:
		return fmt.Errorf("%w: gray and hold durations must be at least 1 tick (hold at most 100000)", ErrFaults)
	}
	return nil
}

// draw picks this seed's rates, each between zero and the mix's.
func (f Faults) draw(u func() float64) Faults {
	d := f
	d.Drop *= u()
	d.Duplicate *= u()
	d.Partition *= u()
	d.Crash *= u()
	d.ClockSkew *= u()
	d.MaxDelay = 1 + int(float64(f.MaxDelay-1)*u())
	// Each of the newer faults is on in about half the seeds, so that the
	// others are also seen alone.
	d.Gray *= onHalf(u())
	d.Forge *= onHalf(u())
	d.Hold *= onHalf(u())
	d.Replay *= onHalf(u())
	d.DiskFault *= u()
	d.GroupCrash *= u()
	return d
}

// onHalf maps a uniform draw to 0 half of the time and to a uniform rate in
// (0, 1] otherwise.
func onHalf(x float64) float64 {
	if x < 0.5 {
		return 0
	}
	return 2*x - 1
}
