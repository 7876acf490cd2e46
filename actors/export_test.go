package actors

import "github.com/asynkron/protoactor-go/actor"

// SessionPIDs returns a client's session actors, so that a test can send
// them what the transport would (dead letters for a lost connection).
func SessionPIDs(c *Client) []*actor.PID { return append([]*actor.PID(nil), c.all...) }
