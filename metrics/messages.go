package metrics

import (
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// The message types a replica sends and receives, as metric labels. A type
// switch finds them: a label lookup by reflection on every message would
// cost more than the rest of Observe.
const (
	msgOther = iota
	msgRequest
	msgReply
	msgPrepare
	msgPrepareOK
	msgCommit
	msgStartViewChange
	msgDoViewChange
	msgStartView
	msgRecovery
	msgRecoveryResponse
	msgGetState
	msgNewState
	msgGetCheckpoint
	msgCheckpointChunk
	msgConfirmView
	msgConfirmViewOK
	msgViewChangeProbe
	msgViewChangeProbeOK
	msgStartEpoch
	msgEpochStarted
	msgEpochQuery
	msgEpochEnded
	numMessageTypes
)

var messageTypeNames = [numMessageTypes]string{
	msgOther: "other", msgRequest: "request", msgReply: "reply", msgPrepare: "prepare",
	msgPrepareOK: "prepare_ok", msgCommit: "commit", msgStartViewChange: "start_view_change",
	msgDoViewChange: "do_view_change", msgStartView: "start_view", msgRecovery: "recovery",
	msgRecoveryResponse: "recovery_response", msgGetState: "get_state", msgNewState: "new_state",
	msgGetCheckpoint: "get_checkpoint", msgCheckpointChunk: "checkpoint_chunk", msgConfirmView: "confirm_view",
	msgConfirmViewOK: "confirm_view_ok", msgViewChangeProbe: "view_change_probe",
	msgViewChangeProbeOK: "view_change_probe_ok", msgStartEpoch: "start_epoch", msgEpochStarted: "epoch_started",
	msgEpochQuery: "epoch_query", msgEpochEnded: "epoch_ended",
}

// messageType is m's label index.
func messageType(m proto.Message) int {
	switch m.(type) {
	case *messages.Request:
		return msgRequest
	case *messages.Reply:
		return msgReply
	case *messages.Prepare:
		return msgPrepare
	case *messages.PrepareOK:
		return msgPrepareOK
	case *messages.Commit:
		return msgCommit
	case *messages.StartViewChange:
		return msgStartViewChange
	case *messages.DoViewChange:
		return msgDoViewChange
	case *messages.StartView:
		return msgStartView
	case *messages.Recovery:
		return msgRecovery
	case *messages.RecoveryResponse:
		return msgRecoveryResponse
	case *messages.GetState:
		return msgGetState
	case *messages.NewState:
		return msgNewState
	case *messages.GetCheckpoint:
		return msgGetCheckpoint
	case *messages.CheckpointChunk:
		return msgCheckpointChunk
	case *messages.ConfirmView:
		return msgConfirmView
	case *messages.ConfirmViewOK:
		return msgConfirmViewOK
	case *messages.ViewChangeProbe:
		return msgViewChangeProbe
	case *messages.ViewChangeProbeOK:
		return msgViewChangeProbeOK
	case *messages.StartEpoch:
		return msgStartEpoch
	case *messages.EpochStarted:
		return msgEpochStarted
	case *messages.EpochQuery:
		return msgEpochQuery
	case *messages.EpochEnded:
		return msgEpochEnded
	}
	return msgOther
}
