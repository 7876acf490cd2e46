package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// NewActorSystem makes an actor system that logs to logger, and to nothing
// when logger is nil. Proto.Actor logs at INFO by default and at ERROR for
// ordinary peer loss; a user who did not ask for those lines must not get
// them, so every actor system this library makes comes from here.
func NewActorSystem(logger *slog.Logger) (*actor.ActorSystem, *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger })), logger
}
