package vsr

// Bug names a known defect of VR implementations. The simulator's self-test
// re-introduces each into the core to show that its checkers catch it. A
// normal build cannot turn one on: the only setter, InjectBugs, exists under
// the vsrbugs build tag, which tests alone use.
type Bug uint32

const (
	// BugCommitWithoutQuorum commits an op on f-1 PrepareOKs instead of f.
	BugCommitWithoutQuorum Bug = 1 << iota
	// BugFirstDoViewChange starts the view on the first DoViewChange.
	BugFirstDoViewChange
	// BugLogByOpNumber picks the view-change log by op number alone.
	BugLogByOpNumber
	// BugIgnoreClientTable executes a retried request again.
	BugIgnoreClientTable
	// BugAcceptGap acknowledges a Prepare that lies past a gap in the log.
	BugAcceptGap
	// BugRecoveringAnswers lets a restarted replica skip recovery and take
	// part at once, as if it still had the state it lost.
	BugRecoveringAnswers
	// BugCheckpointUncommitted names a checkpoint by the op number, past
	// the committed state it holds.
	BugCheckpointUncommitted
	// BugTruncateNoFallback leaves a replica whose ops are below the
	// primary's log without an answer instead of pointing it to the
	// checkpoint.
	BugTruncateNoFallback
	// BugChunkAnyOrder accepts checkpoint chunks out of order and twice.
	BugChunkAnyOrder
	// BugNormalBeforeSnapshot takes a checkpoint's op number after its
	// first chunk, without its state.
	BugNormalBeforeSnapshot
	// BugReadStarvation lets every Prepare put off the heartbeat and holds
	// new read rounds while one is unanswered, so reads wait as long as
	// writes keep coming.
	BugReadStarvation
	// BugNoCheckQuorum keeps a primary that no backup answers in its view.
	BugNoCheckQuorum
	// BugNoPreVote starts a view change on a timeout without probing, and
	// joins every later view change, whoever started it.
	BugNoPreVote
	// BugNoViewWindow lets one message move a replica to any view in range.
	BugNoViewWindow
	// BugOldMemberVotes lets a member that a reconfiguration removed take
	// part in the new epoch, in the place of a new member.
	BugOldMemberVotes
	// BugJoinBeforeUpToDate lets a new member take part in its epoch before
	// it holds the state the epoch began with.
	BugJoinBeforeUpToDate
	// BugReconfigureTwice lets a retried reconfiguration into the log again
	// and execute it again.
	BugReconfigureTwice
	// The three bugs below act outside the core, in what drives it: the
	// simulator's model of the actor layer's persister, and the storage
	// engine's load. The core ignores them.

	// BugAckBeforeDurable sends PrepareOK before its entries are durable.
	BugAckBeforeDurable
	// BugVoteBeforeDurable sends StartViewChange and DoViewChange before
	// their view is durable.
	BugVoteBeforeDurable
	// BugUseCorruptRecord loads log records whose checksum fails as if
	// they were intact.
	BugUseCorruptRecord
)

// AllBugs lists every injectable bug with its name.
var AllBugs = []struct {
	Bug  Bug
	Name string
}{
	{BugCommitWithoutQuorum, "commit-without-quorum"},
	{BugFirstDoViewChange, "first-doviewchange"},
	{BugLogByOpNumber, "log-by-opnumber"},
	{BugIgnoreClientTable, "ignore-client-table"},
	{BugAcceptGap, "accept-gap"},
	{BugRecoveringAnswers, "recovering-answers"},
	{BugCheckpointUncommitted, "checkpoint-uncommitted"},
	{BugTruncateNoFallback, "truncate-no-fallback"},
	{BugChunkAnyOrder, "chunk-any-order"},
	{BugNormalBeforeSnapshot, "normal-before-snapshot"},
	{BugReadStarvation, "read-starvation"},
	{BugNoCheckQuorum, "no-check-quorum"},
	{BugNoPreVote, "no-prevote"},
	{BugNoViewWindow, "no-view-window"},
	{BugOldMemberVotes, "old-member-votes"},
	{BugJoinBeforeUpToDate, "join-before-up-to-date"},
	{BugReconfigureTwice, "reconfigure-twice"},
	{BugAckBeforeDurable, "ack-before-durable"},
	{BugVoteBeforeDurable, "vote-before-durable"},
	{BugUseCorruptRecord, "use-corrupt-record"},
}

func (r *Replica) buggy(b Bug) bool { return r.bugs&b != 0 }
