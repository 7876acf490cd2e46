// Package actors runs the VSR core on Proto.Actor: the replica actor, which
// feeds every protocol message and timer tick to a vsr.Replica and carries
// out what it returns, and the client actor behind the Client API.
//
// The actors decide no protocol question. A replica actor's Receive switches
// on the message type, hands protocol messages to the core, and sends the
// core's output: messages to replicas by index, replies to the client
// address that travelled inside each request. Time reaches the core as tick
// messages from Proto.Actor's scheduler, one-shot and tagged with a
// generation number, so a tick from a stopped or restarted instance is
// ignored instead of cancelled (cancelling repeating timers races inside
// Proto.Actor).
package actors
