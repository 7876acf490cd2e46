// Package messages holds the wire messages of the VSR protocol, generated from
// vsr.proto.
//
// Regenerate after editing vsr.proto (needs protoc from Debian's
// protobuf-compiler; protoc-gen-go is pinned by the command below):
//
//	go generate ./messages
package messages

//go:generate sh -c "GOBIN=$(mktemp -d) && GOFLAGS=-mod=mod go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 && PATH=$GOBIN:$PATH protoc --go_out=paths=source_relative:. vsr.proto"
