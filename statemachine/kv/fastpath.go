package kv

import "google.golang.org/protobuf/encoding/protowire"

// The fast path for puts. A put is the op a store applies most, and
// decoding it through the protobuf runtime (reflection, an Operation, a Put
// and a Result, each allocated, then the Result encoded) cost more than the
// btree insert it leads to. A put as PutOp encodes it is
//
//	Operation{put (field 1): Put{key (field 1), value (field 2)}}
//
// and parsePut reads exactly that encoding, field by field. Anything else
// (another kind, fields out of order or repeated, unknown fields, a zero
// length key or value that PutOp would have left out) goes the general
// way, so both paths give every input the same Result.

// resultFound is the encoding of Result{Found: true}; Result{} encodes to
// no bytes at all.
var resultFound = []byte{1<<3 | byte(protowire.VarintType), 1}

// parsePut returns the key and value of a put encoded as PutOp encodes it.
func parsePut(op []byte) (key, value []byte, ok bool) {
	put, rest, ok := field(op, 1)
	if !ok || len(rest) != 0 {
		return nil, nil, false
	}
	key, rest, ok = field(put, 1)
	if !ok {
		return nil, nil, false
	}
	value, rest, ok = field(rest, 2)
	if !ok || len(rest) != 0 {
		return nil, nil, false
	}
	return key, value, true
}

// field reads a length-delimited field numbered num at the start of b, with
// a non-empty payload (proto3 leaves empty bytes out), and returns the
// payload and what follows it.
func field(b []byte, num protowire.Number) (payload, rest []byte, ok bool) {
	n, typ, k := protowire.ConsumeTag(b)
	if k < 0 || n != num || typ != protowire.BytesType {
		return nil, nil, false
	}
	payload, m := protowire.ConsumeBytes(b[k:])
	if m < 0 || len(payload) == 0 {
		return nil, nil, false
	}
	return payload, b[k+m:], true
}

// applyPut sets key to a copy of value (the op's bytes belong to the log
// entry) and returns the encoded Result.
func (s *Store) applyPut(key, value []byte) []byte {
	if _, found := s.pairs.Set(string(key), clone(value)); found {
		return append([]byte(nil), resultFound...)
	}
	return nil
}
