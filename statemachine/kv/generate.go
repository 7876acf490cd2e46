// Package kv is a replicated key-value store: a statemachine.StateMachine
// whose operations, results and snapshots are the protobuf messages generated
// from kv.proto.
//
// Give [New] to a group as its state machine factory, build operations with
// [PutOp], [GetOp], [DeleteOp], [CASOp] and [PutIfAbsentOp], send them
// through a client (Execute for writes, Read or ReadStale for GetOp, the only
// read-only operation), and decode what comes back with [DecodeResult].
// supervisor's ExampleStartGroup does exactly that. An operation the store
// cannot decode gets a Result with Error set, the same on every replica;
// Apply never fails.
//
// [Store] keeps its map in a copy-on-write B-tree and implements
// statemachine.Checkpointer, so a checkpoint captures the state at once
// (it shares the tree) and is encoded on another goroutine while the store
// goes on changing. Snapshots are sorted by key, so equal states encode to
// equal bytes whatever order they were built in.
//
// Regenerate kv.pb.go after editing kv.proto (needs protoc from Debian's
// protobuf-compiler; protoc-gen-go is pinned by the command below):
//
//	go generate ./statemachine/kv
package kv

//go:generate sh -c "GOBIN=$(mktemp -d) && GOFLAGS=-mod=mod go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 && PATH=$GOBIN:$PATH protoc --go_out=paths=source_relative:. kv.proto"
