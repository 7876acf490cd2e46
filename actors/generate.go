package actors

//go:generate sh -c "GOBIN=$(mktemp -d) && GOFLAGS=-mod=mod go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 && PATH=$GOBIN:$PATH protoc --go_out=paths=source_relative:. status.proto"
