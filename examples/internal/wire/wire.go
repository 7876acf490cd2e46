// Package wire is the small binary encoding the examples' state machines use
// for their ops, results and snapshots.
package wire

import "encoding/binary"

// The wire format of ops, results and snapshots is a small hand-rolled binary
// one: a kind byte, then fields, each an unsigned varint or a byte string
// prefixed with its length as a varint. It is used instead of Erlang's term
// format (which the Elixir code gets for free) or JSON because every replica
// must decode the same bytes to the same op, and a strict binary decoder
// makes that easy to see: it accepts no unknown fields, no trailing bytes and
// no length that runs past the end, and it never allocates more than the
// input holds, so a malformed op costs nothing and cannot panic.

// AppendUvarint appends v as an unsigned varint.
func AppendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

// AppendBytes appends b to dst, prefixed with its length.
func AppendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendString appends s to dst, prefixed with its length.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Reader decodes fields from a byte slice. The first malformed field makes
// the reader bad, and every later read returns a zero value, so that a
// decoder can read all its fields and check once, at the end, with Done.
type Reader struct {
	b   []byte
	bad bool
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.bad || len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Bytes reads a length-prefixed byte string and returns a copy of it. It
// copies because the input is an op or a snapshot that the replica owns:
// the state machine must not keep a slice into it.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	if n == 0 {
		return nil // an empty field decodes alike whether it was nil or empty
	}
	v := append([]byte{}, r.b[:n]...)
	r.b = r.b[n:]
	return v
}

// Text reads a length-prefixed byte string as a Go string.
func (r *Reader) Text() string {
	return string(r.Bytes())
}

// Bad reports whether a field read so far was malformed.
func (r *Reader) Bad() bool { return r.bad }

// Fail marks the input malformed, for a field that decoded but whose value
// the decoder refuses.
func (r *Reader) Fail() { r.bad = true }

// Done reports whether every field read was well formed and nothing is left
// over. Trailing bytes make the whole input malformed rather than being
// ignored, because an op with bytes the decoder skipped is most likely one
// built by a newer or buggier encoder, and executing it would hide that.
func (r *Reader) Done() bool {
	return !r.bad && len(r.b) == 0
}
