// Package kv is a replicated key-value store: a statemachine.StateMachine
// whose operations, results and snapshots are the protobuf messages generated
// from kv.proto.
//
// Regenerate kv.pb.go after editing kv.proto (needs protoc from Debian's
// protobuf-compiler; protoc-gen-go is pinned by the command below):
//
//	go generate ./statemachine/kv
package kv

//go:generate sh -c "GOBIN=$(mktemp -d) && GOFLAGS=-mod=mod go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 && PATH=$GOBIN:$PATH protoc --go_out=paths=source_relative:. kv.proto"
