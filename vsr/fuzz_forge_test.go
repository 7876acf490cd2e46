package vsr

// The forgers of FuzzStep: field values, entries, suffixes, checkpoint chunks
// and whole messages made up for a receiving replica, and the corruption of
// real messages in flight.

import (
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"math"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// Field values for forged messages: mostly close to the receiver's state, so
// that they get past the first checks, sometimes far off.

func (c *fzCluster) small() uint64 { return uint64(c.byte() % 4) }

func (c *fzCluster) value(r *Replica) uint64 {
	b := c.byte()
	switch b % 16 {
	case 0:
		return 0
	case 1:
		return uint64(b >> 4)
	case 2, 3:
		return r.viewNumber
	case 4:
		return r.viewNumber + 1 + c.small()
	case 5:
		return r.opNumber()
	case 6:
		return r.opNumber() + 1 + c.small()
	case 7:
		return r.commitNumber
	case 8:
		return r.commitNumber + 1
	case 9:
		return math.MaxUint64
	case 10:
		return math.MaxUint64 - c.small()
	case 11:
		return c.u64raw()
	case 12:
		return r.lastNormalView
	case 13:
		return r.opNumber() - min(r.opNumber(), 1+c.small())
	case 14:
		return r.viewNumber - min(r.viewNumber, 1+c.small())
	}
	// b%16 == 15: around the largest number admit takes (2^62), or 2^32.
	switch b >> 4 {
	case 1, 2, 3:
		return 1<<62 - 2 + uint64(b>>4) // 2^62-1, 2^62, 2^62+1
	case 4:
		return 1 << 63
	default:
		return 1 << 32
	}
}

func (c *fzCluster) view(r *Replica) uint64 {
	switch b := c.byte(); b % 8 {
	case 0, 1, 2, 3:
		return r.viewNumber
	case 4, 5:
		return r.viewNumber + uint64(b%8) - 3 // the next, the one after
	case 6:
		return r.viewNumber - min(r.viewNumber, 1)
	}
	return c.value(r)
}

func (c *fzCluster) cluster() uint64 {
	switch c.byte() % 16 {
	case 0:
		return 0
	case 1:
		return fzClusterID + 1
	}
	return fzClusterID
}

// sender is a sender index for a message of view v to r.
func (c *fzCluster) sender(r *Replica, v uint64) uint32 {
	switch b := c.byte(); b % 8 {
	case 0, 1, 2:
		return uint32(v % uint64(c.n)) // the primary of v
	case 3, 4:
		return uint32(int(b>>3) % c.n)
	case 5:
		return uint32(r.index)
	case 6:
		return uint32(c.n + int(b>>3))
	default:
		return math.MaxUint32 - uint32(b>>3)
	}
}

// entries builds a batch of entries of view v, normally first, first+1, ...,
// with the ops of an existing log where it has them.
func (c *fzCluster) entries(r *Replica, v, first uint64) []*messages.Entry {
	var count int
	switch b := c.byte(); b % 8 {
	case 0:
		count = 0
	case 5:
		count = c.cfg.MaxBatch
	case 6:
		count = c.cfg.MaxBatch + 1
	case 7:
		count = 70 + int(c.byte()) // a huge batch
	default:
		count = int(b % 8)
	}
	switch c.byte() % 4 {
	case 1:
		first = c.value(r)
	case 2:
		first = 1
	case 3:
		first = r.commitNumber + 1
	}
	src := c.replicas[c.index()] // whose entries to copy, where it has them
	salt := c.byte()
	es := make([]*messages.Entry, count)
	for k := range es {
		op := first + uint64(k)
		if e := src.Entry(op); e != nil && salt%2 == 0 {
			es[k] = e
			continue
		}
		es[k] = &messages.Entry{OpNumber: op, View: v, ClientId: 1000 + uint64(salt), RequestNumber: uint64(k) + 1,
			Operation: kv.PutOp(fmt.Sprintf("f%d", salt), []byte{byte(op)}), ReplyTo: fzAddr}
	}
	c.corrupt(r, es)
	return es
}

// corrupt may damage one entry of es (replacing it, never changing an entry
// that a replica may hold).
func (c *fzCluster) corrupt(r *Replica, es []*messages.Entry) {
	b := c.byte()
	if len(es) == 0 || b%8 >= 5 {
		return
	}
	k := int(c.byte()) % len(es)
	if b%8 == 0 {
		es[k] = nil
		return
	}
	if es[k] == nil {
		return
	}
	e := proto.Clone(es[k]).(*messages.Entry)
	switch b % 8 {
	case 1:
		e.OpNumber = c.value(r)
	case 2:
		e.RequestNumber = 0
	case 3:
		e.ClientId = 0
	case 4:
		e.Operation = nil
		e.ReplyTo = nil
	}
	es[k] = e
}

// suffix builds the entries of a log after some op, with an op number and a
// commit number to go with them, for a DoViewChange, a StartView or a
// RecoveryResponse: mostly a replica's real log after its commit number (or
// from a little lower down, as a StartView may carry), sometimes made up,
// cut short or inconsistent.
func (c *fzCluster) suffix(r *Replica, v uint64) (es []*messages.Entry, op, commit uint64) {
	src := c.replicas[c.index()]
	b := c.byte()
	switch b % 4 {
	case 0:
		commit = src.commitNumber
	case 1:
		commit = src.commitNumber - min(src.commitNumber-src.logBase, uint64(b>>2)%4)
	case 2:
		es = c.entries(r, v, r.commitNumber+1)
		commit = r.commitNumber
		if len(es) > 0 && es[0] != nil {
			commit = es[0].OpNumber - min(es[0].OpNumber, 1)
		}
		return es, c.opNumber(r, commit+uint64(len(es))), commit
	case 3:
		return nil, c.value(r), c.value(r)
	}
	if src.opNumber() > commit {
		es = append(es, src.entriesFrom(commit+1, src.opNumber())...)
	}
	if b>>4 == 0 && len(es) > 0 {
		es = es[:int(c.byte())%len(es)]
	}
	c.corrupt(r, es)
	op = c.opNumber(r, commit+uint64(len(es)))
	if b>>6 == 1 {
		commit = c.value(r)
	}
	return es, op, commit
}

// opNumber is mostly the op number that goes with the entries, normally
// sometimes one at either end of the range or anything.
func (c *fzCluster) opNumber(r *Replica, normal uint64) uint64 {
	switch c.byte() % 8 {
	case 4:
		return c.value(r)
	case 5:
		return math.MaxUint64
	case 6:
		return normal - 1
	case 7:
		return normal + 1
	}
	return normal
}

func (c *fzCluster) nonce(r *Replica) uint64 {
	if c.byte()%4 != 0 {
		return r.recovery.nonce
	}
	return c.value(r)
}

// chunk forges a checkpoint chunk: mostly a real chunk of some replica's
// checkpoint (or of the checkpoint r is fetching), sometimes with its data,
// checksum, numbering or digest damaged.
func (c *fzCluster) chunk(r *Replica) *messages.CheckpointChunk {
	src := c.replicas[c.index()]
	var m *messages.CheckpointChunk
	if cp := src.checkpoint; cp != nil {
		m = src.chunkMessage(cp, uint32(c.byte())%src.chunkCount(cp))
	} else {
		data := []byte{c.byte(), c.byte()}
		sum := sha256.Sum256(data)
		m = &messages.CheckpointChunk{Replica: uint32(src.index), OpNumber: c.value(r), Digest: sum[:],
			Size: uint64(len(data)), Chunks: 1, Data: data, Crc32C: crc32.Checksum(data, castagnoli)}
	}
	m = proto.Clone(m).(*messages.CheckpointChunk) // never change what a replica holds
	m.ClusterId = c.cluster()
	if f := r.fetch; f.active && f.chunks > 0 && c.byte()%2 == 0 {
		m.OpNumber, m.Digest, m.Size, m.Chunks = f.opNumber, f.digest, f.size, f.chunks // r's transfer
	}
	switch b := c.byte(); b % 8 {
	case 0:
		if len(m.Data) > 0 {
			m.Data[int(b>>3)%len(m.Data)] ^= 1 + b>>3 // bad checksum
		}
	case 1:
		if len(m.Data) > 0 {
			m.Data[int(b>>3)%len(m.Data)] ^= 1 + b>>3
			m.Crc32C = crc32.Checksum(m.Data, castagnoli) // good checksum, bad digest
		}
	case 2:
		m.Chunk = uint32(c.value(r))
	case 3:
		m.Chunks = uint32(c.value(r))
	case 4:
		m.Size = c.value(r)
	case 5:
		m.Digest = m.Digest[:int(b>>3)%(len(m.Digest)+1)]
	}
	m.Replica = c.sender(r, uint64(m.Replica))
	return m
}

// forge makes up a message for r.
func (c *fzCluster) forge(r *Replica) proto.Message {
	kind := c.byte()
	switch kind % 16 {
	case 0:
		v := c.view(r)
		m := &messages.Prepare{ClusterId: c.cluster(), View: v, CommitNumber: c.value(r)}
		m.Replica = c.sender(r, v)
		m.Entries = c.entries(r, v, r.opNumber()+1)
		return m
	case 1:
		v := c.view(r)
		return &messages.PrepareOK{ClusterId: c.cluster(), View: v, OpNumber: c.value(r), Replica: c.sender(r, v+1)}
	case 2:
		v := c.view(r)
		return &messages.Commit{ClusterId: c.cluster(), View: v, CommitNumber: c.value(r), Replica: c.sender(r, v)}
	case 3:
		v := c.view(r)
		return &messages.StartViewChange{ClusterId: c.cluster(), View: v, Replica: c.sender(r, v+1)}
	case 4:
		v := c.view(r)
		m := &messages.DoViewChange{ClusterId: c.cluster(), View: v, Replica: c.sender(r, v+1)}
		m.LastNormalView = c.value(r)
		m.Entries, m.OpNumber, m.CommitNumber = c.suffix(r, v)
		return m
	case 5:
		v := c.view(r)
		m := &messages.StartView{ClusterId: c.cluster(), View: v, Replica: c.sender(r, v)}
		m.Entries, m.OpNumber, m.CommitNumber = c.suffix(r, v)
		return m
	case 6:
		return &messages.Recovery{ClusterId: c.cluster(), Replica: c.sender(r, 0), Nonce: c.value(r)}
	case 7:
		v := c.value(r)
		m := &messages.RecoveryResponse{ClusterId: c.cluster(), View: v, Nonce: c.nonce(r), Replica: c.sender(r, v)}
		if c.byte()%4 != 0 {
			m.FromPrimary = true
			m.Entries, m.OpNumber, m.CommitNumber = c.suffix(r, v)
		}
		return m
	case 8:
		v := c.view(r)
		return &messages.GetState{ClusterId: c.cluster(), View: v, OpNumber: c.value(r), Replica: c.sender(r, v+1)}
	case 9:
		v := c.view(r)
		m := &messages.NewState{ClusterId: c.cluster(), View: v, Replica: c.sender(r, v)}
		m.Entries = c.entries(r, v, r.commitNumber+1)
		m.OpNumber = c.opNumber(r, uint64(len(m.Entries))+r.commitNumber)
		m.CommitNumber = min(m.OpNumber, c.value(r))
		return m
	case 10:
		v := c.view(r)
		return &messages.ConfirmView{ClusterId: c.cluster(), View: v, Round: c.value(r), Replica: c.sender(r, v)}
	case 11:
		v := c.view(r)
		round := r.primary.reads.round
		if c.byte()%4 == 0 {
			round = c.value(r)
		}
		return &messages.ConfirmViewOK{ClusterId: c.cluster(), View: v, Round: round, Replica: c.sender(r, v+1)}
	case 12:
		return &messages.Request{ClusterId: c.cluster(), ClientId: c.value(r), RequestNumber: c.value(r),
			Operation: kv.PutOp("x", []byte{kind}), ReadMode: messages.ReadMode(c.byte() % 5),
			Register: kind>>4 == 1}
	case 13:
		return c.forgeTransfer(r, kind>>4)
	case 14: // a typed nil of a protocol message type
		return fzTypedNils[int(c.byte())%len(fzTypedNils)]
	default: // a message of the package that is not a protocol message
		return fzOthers[int(c.byte())%len(fzOthers)]
	}
}

// forgeTransfer makes up a message of state or checkpoint transfer; sub 0 is
// nil, as kind 13 always was before these messages existed.
func (c *fzCluster) forgeTransfer(r *Replica, sub byte) proto.Message {
	switch sub % 5 {
	case 1:
		src := c.replicas[c.index()]
		m := &messages.GetCheckpoint{ClusterId: c.cluster(), Replica: c.sender(r, 1), OpNumber: c.value(r),
			Chunk: uint32(c.small())}
		if cp := src.checkpoint; cp != nil && c.byte()%4 != 0 {
			m.OpNumber, m.Digest = cp.opNumber, cp.digest
		}
		return m
	case 2:
		return c.chunk(r)
	case 3:
		v := c.view(r)
		return &messages.GetState{ClusterId: c.cluster(), View: v, OpNumber: c.value(r), Replica: c.sender(r, v+1),
			CommittedOnly: true}
	case 4:
		v := c.view(r)
		m := &messages.NewState{ClusterId: c.cluster(), View: v, Replica: c.sender(r, v)}
		m.CommittedOnly = c.byte()%2 == 0
		if c.byte()%2 == 0 {
			m.CommitNumber = c.value(r)
			m.OpNumber = max(m.CommitNumber, c.value(r))
			m.CheckpointOpNumber = c.value(r)
			return m
		}
		m.Entries = c.entries(r, v, r.commitNumber+1)
		m.CommitNumber = c.opNumber(r, uint64(len(m.Entries))+r.commitNumber)
		m.OpNumber = max(m.CommitNumber, c.value(r))
		return m
	}
	return nil
}

var fzTypedNils = []proto.Message{
	(*messages.Request)(nil), (*messages.Prepare)(nil), (*messages.PrepareOK)(nil), (*messages.Commit)(nil),
	(*messages.StartViewChange)(nil), (*messages.DoViewChange)(nil), (*messages.StartView)(nil),
	(*messages.Recovery)(nil), (*messages.RecoveryResponse)(nil), (*messages.GetState)(nil),
	(*messages.NewState)(nil), (*messages.ConfirmView)(nil), (*messages.ConfirmViewOK)(nil),
	(*messages.GetCheckpoint)(nil), (*messages.CheckpointChunk)(nil),
}

var fzOthers = []proto.Message{
	&messages.Reply{View: 1}, &messages.Entry{OpNumber: 1}, &messages.ClientAddress{}, &messages.Checkpoint{},
	&messages.ClientSession{ClientId: 1}, &messages.Entry{},
}

// mutate corrupts one field of m, a clone of a message in flight to r.
func (c *fzCluster) mutate(r *Replica, m proto.Message) {
	pm := m.ProtoReflect()
	fields := pm.Descriptor().Fields()
	fd := fields.Get(int(c.byte()) % fields.Len())
	switch {
	case fd.IsList():
		es := fzEntriesOf(m)
		if es == nil {
			return
		}
		switch b := c.byte(); b % 4 {
		case 0:
			*es = c.entries(r, r.viewNumber, r.opNumber()+1)
		case 1:
			if len(*es) > 0 {
				*es = (*es)[int(b>>2)%len(*es):]
			}
		default:
			c.corrupt(r, *es)
		}
	case fd.Kind() == protoreflect.Uint64Kind:
		pm.Set(fd, protoreflect.ValueOfUint64(c.value(r)))
	case fd.Kind() == protoreflect.Uint32Kind:
		pm.Set(fd, protoreflect.ValueOfUint32(c.sender(r, r.viewNumber)))
	case fd.Kind() == protoreflect.BoolKind:
		pm.Set(fd, protoreflect.ValueOfBool(!pm.Get(fd).Bool()))
	case fd.Kind() == protoreflect.EnumKind:
		pm.Set(fd, protoreflect.ValueOfEnum(protoreflect.EnumNumber(c.byte()%4)))
	case fd.Kind() == protoreflect.BytesKind:
		b := pm.Get(fd).Bytes()
		if k := c.byte(); len(b) > 0 && k%2 == 0 {
			b = append([]byte(nil), b...)
			b[int(k>>1)%len(b)] ^= 1 // one bit of a digest or of chunk data
			pm.Set(fd, protoreflect.ValueOfBytes(b))
			return
		}
		pm.Set(fd, protoreflect.ValueOfBytes([]byte{c.byte()}))
	case fd.Kind() == protoreflect.MessageKind:
		pm.Clear(fd)
	}
}

// fzEntriesOf returns the entry list of m, if it has one.
func fzEntriesOf(m proto.Message) *[]*messages.Entry {
	switch m := m.(type) {
	case *messages.Prepare:
		return &m.Entries
	case *messages.NewState:
		return &m.Entries
	case *messages.DoViewChange:
		return &m.Entries
	case *messages.StartView:
		return &m.Entries
	case *messages.RecoveryResponse:
		return &m.Entries
	}
	return nil
}
