package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The compact form of log entries and push results (schema 12 on). The log
// and the results are written once per pushed op and read rarely (a
// warning's history, a resent batch, audits), so what counts is the bytes
// the single writer puts to disk and the CPU it spends making them. The
// older form, a MessagePack map keyed by the JSON names, carries every key
// in every value and every id as 36 characters; stores keep such values
// forever, so both forms are read. Attempt records take the same form
// from schema 13 on (attemptcodec.go), and warning states from schema 14
// on (statecodec.go), with the packer and unpacker here.
//
// A compact value is compactTag and then one MessagePack array of the
// fields in a fixed order (trailing empty fields left out; a reader takes a
// missing field as empty), where:
//   - an id that is a canonical UUID is 16 raw bytes (bin), any other id a
//     string; a photo's hash is its raw bytes;
//   - from schema 18, a string of the fixed list in words.go (an entry's
//     type, a status, a method, an outcome, a fraud type...) is one byte,
//     its place in the list; any other string is a string;
//   - a field the entry holds already is nil and taken from there on
//     decoding: the op's type and warning_id are the entry's Type and
//     EntityID, the result's op_id and client_seq the op's and its version
//     the entry's seq; a result stored under resultKey has its client_seq
//     in the key. A value that differs from where it would be taken from
//     is written, so decoding gives back exactly what was encoded.
//
// The arrays, in order:
//
//	entry    [seq, type, entity_id, actor_id, device_id, received_at, op, result, feed]
//	op       [id, client_seq, type, warning_id, base_version, at, body]
//	body     [unit, assignee, id, method, reached, outcome, loss_fen, notes, location, photos, reason, decision, comment, answer]
//	location [lat, lng, accuracy]
//	result   [op_id, client_seq, status, code, message, version, flags]
//	flag     [code, op_id, detail, resolved]
//	feed     [external_id, name, phone, id_tail, address, unit, fraud_type, risk, warned_at, deadline]

// compactTag starts a compact value: 0xc1 is the one byte MessagePack never
// uses, so no value of the older form starts with it.
const compactTag = 0xc1

// packers are the buffers values are encoded in before they are copied
// out at their exact length: bbolt keeps each value until the commit.
var packers = sync.Pool{New: func() any { return &packer{b: make([]byte, 0, 512)} }}

// encodeCompact is what fill writes after compactTag, in a slice of its
// own.
func encodeCompact(fill func(p *packer)) []byte {
	p := packers.Get().(*packer)
	p.b = append(p.b[:0], compactTag)
	fill(p)
	data := bytes.Clone(p.b)
	if cap(p.b) <= 1<<16 {
		packers.Put(p)
	}
	return data
}

// encodeLogEntry is e in the compact form.
func encodeLogEntry(e *LogEntry) []byte {
	return encodeCompact(func(p *packer) { p.entry(e) })
}

// putLogEntry stores e under its seq in the log bucket b.
func putLogEntry(b *bolt.Bucket, e *LogEntry) error {
	return b.Put(schema.U64(e.Seq), encodeLogEntry(e))
}

// getLogEntry decodes the log entry under key into e and reports whether
// it was there.
func getLogEntry(b *bolt.Bucket, key []byte, e *LogEntry) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	return true, DecodeLogEntry(data, e)
}

// DecodeLogEntry reads a value of the log bucket, in either form, into e.
func DecodeLogEntry(data []byte, e *LogEntry) error {
	return decodeEither(data, e, "log entry", (*unpacker).entry)
}

// decodeEither reads a value of either form into v, zeroed first: the
// compact form with read, the older with the MessagePack library.
func decodeEither[T any](data []byte, v *T, what string, read func(*unpacker, *T)) error {
	var zero T
	*v = zero
	if len(data) == 0 || data[0] != compactTag {
		return decodeOld(data, v)
	}
	u := unpacker{b: data[1:]}
	read(&u, v)
	if err := u.finish(); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}

// decodeOld reads a value of the older form. The MessagePack library
// trusts what it decodes and panics on some malformed values (a nil where
// a time is due): a damaged value is an error, not a crash of the server
// or a tool.
func decodeOld(data []byte, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decode %T: %v", v, p)
		}
	}()
	return decode(data, v)
}

// logHead is what some readers need of a log entry, read without the rest.
type logHead struct {
	DeviceID   string    `json:"device_id"`
	ReceivedAt time.Time `json:"received_at"`
}

// decodeLogHead reads only the device and the time of a log entry: a
// binary search over the log and a migration's walk read thousands.
func decodeLogHead(data []byte) (logHead, error) {
	var h logHead
	if len(data) == 0 || data[0] != compactTag {
		return h, decodeOld(data, &h)
	}
	u := unpacker{b: data[1:]}
	l := u.list(entryFields)
	l.uint() // seq
	l.word() // type
	l.id()   // entity_id
	l.id()   // actor_id
	h.DeviceID = l.id()
	h.ReceivedAt = l.time()
	if u.err != nil {
		return logHead{}, fmt.Errorf("decode log entry: %w", u.err)
	}
	return h, nil
}

// encodeResult is r in the compact form, as stored under
// resultKey(device, clientSeq).
func encodeResult(r *syncproto.Result, clientSeq uint64) []byte {
	return encodeCompact(func(p *packer) { p.result(r, resultBase{clientSeq: clientSeq, hasClientSeq: true}) })
}

// putResult stores r under resultKey(device, clientSeq) in the results
// bucket b.
func putResult(b *bolt.Bucket, key []byte, clientSeq uint64, r *syncproto.Result) error {
	return b.Put(key, encodeResult(r, clientSeq))
}

// getResult decodes the result under resultKey(device, clientSeq) into r
// and reports whether it was there.
func getResult(b *bolt.Bucket, key []byte, clientSeq uint64, r *syncproto.Result) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	return true, DecodeResult(data, clientSeq, r)
}

// DecodeResult reads a value of the results bucket, in either form, into
// r; clientSeq is the one its key holds.
func DecodeResult(data []byte, clientSeq uint64, r *syncproto.Result) error {
	return decodeEither(data, r, "push result", func(u *unpacker, r *syncproto.Result) {
		u.result(r, resultBase{clientSeq: clientSeq, hasClientSeq: true})
	})
}

// resultBase is what a result's redundant fields are taken from.
type resultBase struct {
	opID         string
	clientSeq    uint64
	hasOp        bool // opID and clientSeq are the op's
	hasClientSeq bool // clientSeq alone is known (the key's)
	version      uint64
	hasVersion   bool
}

func (b resultBase) knowsClientSeq() bool { return b.hasOp || b.hasClientSeq }

// Field counts of the arrays: a reader refuses an array longer than it
// knows.
const (
	entryFields    = 9
	opFields       = 7
	bodyFields     = 14
	locationFields = 3
	resultFields   = 7
	flagFields     = 4
	feedFields     = 10
)

func (p *packer) entry(e *LogEntry) {
	a := p.array()
	a.uint(e.Seq)
	a.word(e.Type)
	a.id(e.EntityID)
	a.id(e.ActorID)
	a.id(e.DeviceID)
	a.time(e.ReceivedAt)
	if a.present(e.Op != nil) {
		p.op(e.Op, e)
	}
	if a.present(e.Result != nil) {
		base := resultBase{version: e.Seq, hasVersion: true}
		if e.Op != nil {
			base.opID, base.clientSeq, base.hasOp = e.Op.ID, e.Op.ClientSeq, true
		}
		p.result(e.Result, base)
	}
	if a.present(e.Feed != nil) {
		p.feed(e.Feed)
	}
	a.close()
}

func (p *packer) op(op *syncproto.Op, e *LogEntry) {
	a := p.array()
	a.id(op.ID)
	a.uint(op.ClientSeq)
	if a.present(op.Type != e.Type) {
		p.word(op.Type)
	}
	if a.present(op.WarningID != e.EntityID) {
		p.id(op.WarningID)
	}
	a.uint(op.BaseVersion)
	a.time(op.At)
	b := &op.Body
	a.present(true)
	body := p.array()
	body.str(b.Unit)
	body.id(b.Assignee)
	body.id(b.AttemptID)
	body.word(b.Method)
	if body.present(b.Reached != nil) {
		p.bool(*b.Reached)
	}
	body.word(b.Outcome)
	body.int(b.LossFen)
	body.str(b.Notes)
	if body.present(b.Location != nil) {
		p.location(b.Location)
	}
	if body.present(b.Photos != nil) {
		p.arrayLen(len(b.Photos))
		for _, h := range b.Photos {
			p.hex(h)
		}
	}
	body.str(b.Reason)
	body.word(b.Decision)
	body.str(b.Comment)
	body.str(b.Answer)
	body.close()
	a.close()
}

// location writes a place as [lat, lng, accuracy] (an op's and an
// attempt's).
func (p *packer) location(l *syncproto.Location) {
	a := p.array()
	a.float(l.Lat)
	a.float(l.Lng)
	a.float(l.Accuracy)
	a.close()
}

func (p *packer) result(r *syncproto.Result, base resultBase) {
	a := p.array()
	if a.present(!base.hasOp || r.OpID != base.opID) {
		p.id(r.OpID)
	}
	if a.present(!base.knowsClientSeq() || r.ClientSeq != base.clientSeq) {
		p.uint(r.ClientSeq)
	}
	a.word(r.Status)
	a.word(r.Code)
	a.str(r.Message)
	if a.present(!base.hasVersion || r.Version != base.version) {
		p.uint(r.Version)
	}
	if a.present(r.Flags != nil) {
		p.arrayLen(len(r.Flags))
		for i := range r.Flags {
			p.flag(&r.Flags[i])
		}
	}
	a.close()
}

// flag writes a conflict flag (a result's and a warning state's).
func (p *packer) flag(f *syncproto.Flag) {
	a := p.array()
	a.word(f.Code)
	a.id(f.OpID)
	a.str(f.Detail)
	a.bool(f.Resolved)
	a.close()
}

func (p *packer) feed(f *syncproto.FeedWarning) {
	a := p.array()
	a.str(f.ExternalID)
	a.str(f.Name)
	a.str(f.Phone)
	a.str(f.IDTail)
	a.str(f.Address)
	a.str(f.Unit)
	a.word(f.FraudType)
	a.word(f.Risk)
	a.time(f.WarnedAt)
	if a.present(f.Deadline != nil) {
		p.time(*f.Deadline)
	}
	a.close()
}

func (u *unpacker) entry(e *LogEntry) {
	l := u.list(entryFields)
	e.Seq = l.uint()
	e.Type = l.word()
	e.EntityID = l.id()
	e.ActorID = l.id()
	e.DeviceID = l.id()
	e.ReceivedAt = l.time()
	if l.next() {
		e.Op = &syncproto.Op{}
		u.op(e.Op, e)
	}
	if l.next() {
		base := resultBase{version: e.Seq, hasVersion: true}
		if e.Op != nil {
			base.opID, base.clientSeq, base.hasOp = e.Op.ID, e.Op.ClientSeq, true
		}
		e.Result = &syncproto.Result{}
		u.result(e.Result, base)
	}
	if l.next() {
		e.Feed = &syncproto.FeedWarning{}
		u.feed(e.Feed)
	}
}

func (u *unpacker) op(op *syncproto.Op, e *LogEntry) {
	l := u.list(opFields)
	op.ID = l.id()
	op.ClientSeq = l.uint()
	op.Type = e.Type
	if l.next() {
		op.Type = u.word()
	}
	op.WarningID = e.EntityID
	if l.next() {
		op.WarningID = u.id()
	}
	op.BaseVersion = l.uint()
	op.At = l.time()
	if !l.next() {
		return
	}
	b := &op.Body
	body := u.list(bodyFields)
	b.Unit = body.str()
	b.Assignee = body.id()
	b.AttemptID = body.id()
	b.Method = body.word()
	if body.next() {
		v := u.bool()
		b.Reached = &v
	}
	b.Outcome = body.word()
	b.LossFen = body.int()
	b.Notes = body.str()
	if body.next() {
		b.Location = u.location()
	}
	if body.next() {
		n := u.arrayLen()
		b.Photos = make([]string, n)
		for i := range b.Photos {
			b.Photos[i] = u.hex()
		}
	}
	b.Reason = body.str()
	b.Decision = body.word()
	b.Comment = body.str()
	b.Answer = body.str()
}

// location reads what packer.location wrote.
func (u *unpacker) location() *syncproto.Location {
	l := u.list(locationFields)
	return &syncproto.Location{Lat: l.float(), Lng: l.float(), Accuracy: l.float()}
}

func (u *unpacker) result(r *syncproto.Result, base resultBase) {
	l := u.list(resultFields)
	if l.next() {
		r.OpID = u.id()
	} else if base.hasOp {
		r.OpID = base.opID
	}
	if l.next() {
		r.ClientSeq = u.uint()
	} else if base.knowsClientSeq() {
		r.ClientSeq = base.clientSeq
	}
	r.Status = l.word()
	r.Code = l.word()
	r.Message = l.str()
	if l.next() {
		r.Version = u.uint()
	} else if base.hasVersion {
		r.Version = base.version
	}
	if l.next() {
		n := u.arrayLen()
		r.Flags = make([]syncproto.Flag, n)
		for i := range r.Flags {
			r.Flags[i] = u.flag()
		}
	}
}

// flag reads what packer.flag wrote.
func (u *unpacker) flag() syncproto.Flag {
	f := u.list(flagFields)
	return syncproto.Flag{Code: f.word(), OpID: f.id(), Detail: f.str(), Resolved: f.bool()}
}

func (u *unpacker) feed(f *syncproto.FeedWarning) {
	l := u.list(feedFields)
	f.ExternalID = l.str()
	f.Name = l.str()
	f.Phone = l.str()
	f.IDTail = l.str()
	f.Address = l.str()
	f.Unit = l.str()
	f.FraudType = l.word()
	f.Risk = l.word()
	f.WarnedAt = l.time()
	if l.next() {
		t := u.time()
		f.Deadline = &t
	}
}

// packer appends MessagePack to b.
type packer struct{ b []byte }

func (p *packer) nil() { p.b = append(p.b, 0xc0) }

func (p *packer) bool(v bool) {
	if v {
		p.b = append(p.b, 0xc3)
	} else {
		p.b = append(p.b, 0xc2)
	}
}

func (p *packer) uint(v uint64) {
	switch {
	case v < 0x80:
		p.b = append(p.b, byte(v))
	case v <= math.MaxUint8:
		p.b = append(p.b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		p.b = binary.BigEndian.AppendUint16(append(p.b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		p.b = binary.BigEndian.AppendUint32(append(p.b, 0xce), uint32(v))
	default:
		p.b = binary.BigEndian.AppendUint64(append(p.b, 0xcf), v)
	}
}

func (p *packer) int(v int64) {
	switch {
	case v >= 0:
		p.uint(uint64(v))
	case v >= -32:
		p.b = append(p.b, byte(v))
	case v >= math.MinInt8:
		p.b = append(p.b, 0xd0, byte(v))
	case v >= math.MinInt16:
		p.b = binary.BigEndian.AppendUint16(append(p.b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		p.b = binary.BigEndian.AppendUint32(append(p.b, 0xd2), uint32(v))
	default:
		p.b = binary.BigEndian.AppendUint64(append(p.b, 0xd3), uint64(v))
	}
}

func (p *packer) float(v float64) {
	p.b = binary.BigEndian.AppendUint64(append(p.b, 0xcb), math.Float64bits(v))
}

func (p *packer) str(s string) {
	n := len(s)
	switch {
	case n < 32:
		p.b = append(p.b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		p.b = append(p.b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		p.b = binary.BigEndian.AppendUint16(append(p.b, 0xda), uint16(n))
	default:
		p.b = binary.BigEndian.AppendUint32(append(p.b, 0xdb), uint32(n))
	}
	p.b = append(p.b, s...)
}

// binHeader starts a bin of n bytes.
func (p *packer) binHeader(n int) {
	switch {
	case n <= math.MaxUint8:
		p.b = append(p.b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		p.b = binary.BigEndian.AppendUint16(append(p.b, 0xc5), uint16(n))
	default:
		p.b = binary.BigEndian.AppendUint32(append(p.b, 0xc6), uint32(n))
	}
}

// id writes a canonical UUID as its 16 bytes, anything else as a string.
func (p *packer) id(s string) {
	raw, ok := parseUUID(s)
	if !ok {
		p.str(s)
		return
	}
	p.b = append(append(p.b, 0xc4, 16), raw[:]...)
}

// uuidPairs are where the hexadecimal digit pairs of a canonical UUID are.
var uuidPairs = [16]uint8{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// hexValue is the value of each lowercase hexadecimal digit, and 0xff for
// every other byte.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

// parseUUID is the 16 bytes of a lowercase canonical UUID (as
// syncproto.ValidUUID accepts it), which is all an id is written as bytes
// for: its text comes back exactly.
func parseUUID(s string) (raw [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return raw, false
	}
	for i, at := range uuidPairs {
		hi, lo := hexValue[s[at]], hexValue[s[at+1]]
		if hi > 15 || lo > 15 {
			return raw, false
		}
		raw[i] = hi<<4 | lo
	}
	return raw, true
}

// hex writes lowercase hexadecimal (a photo's SHA-256) as its bytes,
// anything else as a string.
func (p *packer) hex(s string) {
	if s == "" || len(s)%2 != 0 || !lowerHex(s) {
		p.str(s)
		return
	}
	p.binHeader(len(s) / 2)
	for i := 0; i < len(s); i += 2 {
		p.b = append(p.b, hexValue[s[i]]<<4|hexValue[s[i+1]])
	}
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if hexValue[s[i]] > 15 {
			return false
		}
	}
	return true
}

// time writes the MessagePack timestamp extension in its shortest layout.
func (p *packer) time(t time.Time) {
	sec, nsec := t.Unix(), uint64(t.Nanosecond())
	switch {
	case sec >= 0 && sec < 1<<34 && nsec == 0 && sec <= math.MaxUint32:
		p.b = binary.BigEndian.AppendUint32(append(p.b, 0xd6, 0xff), uint32(sec))
	case sec >= 0 && sec < 1<<34:
		p.b = binary.BigEndian.AppendUint64(append(p.b, 0xd7, 0xff), nsec<<34|uint64(sec))
	default:
		p.b = binary.BigEndian.AppendUint32(append(p.b, 0xc7, 12, 0xff), uint32(nsec))
		p.b = binary.BigEndian.AppendUint64(p.b, uint64(sec))
	}
}

func (p *packer) arrayLen(n int) {
	switch {
	case n < 16:
		p.b = append(p.b, 0x90|byte(n))
	case n <= math.MaxUint16:
		p.b = binary.BigEndian.AppendUint16(append(p.b, 0xdc), uint16(n))
	default:
		p.b = binary.BigEndian.AppendUint32(append(p.b, 0xdd), uint32(n))
	}
}

// array starts an array of at most 15 fields; close writes its length,
// leaving out the empty fields at its end.
func (p *packer) array() *fields {
	p.b = append(p.b, 0x90)
	return &fields{p: p, head: len(p.b) - 1, end: len(p.b)}
}

// wideArray starts an array of up to 65,535 fields (a warning state's),
// its header room for a 16-bit length; close writes the shortest header
// for the fields kept, so the bytes do not depend on how the array began.
func (p *packer) wideArray() *fields {
	p.b = append(p.b, 0xdc, 0, 0)
	return &fields{p: p, head: len(p.b) - 3, end: len(p.b), wide: true}
}

// fields writes one array's fields in order.
type fields struct {
	p *packer
	// head is where the array's header is; n counts the fields written,
	// kept those up to the last one not empty, which ends at end.
	head, n, kept, end int
	// pending: the last field started by present is being written.
	pending bool
	// wide: the header has room for a 16-bit length (wideArray).
	wide bool
}

// mark ends a field.
func (f *fields) mark(empty bool) {
	f.n++
	if !empty {
		f.kept, f.end = f.n, len(f.p.b)
	}
}

func (f *fields) close() {
	f.settle()
	b := f.p.b[:f.end]
	switch {
	case !f.wide:
		b[f.head] = 0x90 | byte(f.kept)
	case f.kept < 16:
		// The one-byte header MessagePack writes for a short array: the
		// fields move down over the two bytes left unused.
		b[f.head] = 0x90 | byte(f.kept)
		b = append(b[:f.head+1], b[f.head+3:]...)
	default:
		b[f.head] = 0xdc
		binary.BigEndian.PutUint16(b[f.head+1:], uint16(f.kept))
	}
	f.p.b = b
}

// present starts a field that the caller writes when present is true
// (a value of its own: an array, a value that may differ from where it
// would be taken from), and that is nil when not; it reports present.
func (f *fields) present(present bool) bool {
	f.settle()
	if !present {
		f.p.nil()
		f.mark(true)
		return false
	}
	f.n++
	f.pending = true
	return true
}

// settle ends the field present started, which its caller has written.
func (f *fields) settle() {
	if f.pending {
		f.kept, f.end, f.pending = f.n, len(f.p.b), false
	}
}

func (f *fields) str(s string)    { f.settle(); f.p.str(s); f.mark(s == "") }
func (f *fields) id(s string)     { f.settle(); f.p.id(s); f.mark(s == "") }
func (f *fields) uint(v uint64)   { f.settle(); f.p.uint(v); f.mark(v == 0) }
func (f *fields) int(v int64)     { f.settle(); f.p.int(v); f.mark(v == 0) }
func (f *fields) bool(v bool)     { f.settle(); f.p.bool(v); f.mark(!v) }
func (f *fields) float(v float64) { f.settle(); f.p.float(v); f.mark(v == 0 && !math.Signbit(v)) }
func (f *fields) time(t time.Time) {
	f.settle()
	f.p.time(t)
	f.mark(t.IsZero())
}

// errCorrupt is what a compact value that this code did not write decodes
// to (wrapped, with where).
var errCorrupt = errors.New("not a compact value")

// unpacker reads MessagePack from b, the part not read yet. It keeps the
// first error; once it has one, every read gives a zero value.
type unpacker struct {
	b   []byte
	err error
}

func (u *unpacker) fail(format string, args ...any) {
	if u.err == nil {
		u.err = fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
	}
	u.b = nil
}

// finish is the first error, or one if bytes are left over.
func (u *unpacker) finish() error {
	if u.err == nil && len(u.b) > 0 {
		u.fail("%d bytes after the value", len(u.b))
	}
	return u.err
}

func (u *unpacker) next() byte {
	if len(u.b) == 0 {
		u.fail("truncated")
		return 0xc0
	}
	c := u.b[0]
	u.b = u.b[1:]
	return c
}

// take is the next n bytes.
func (u *unpacker) take(n uint64) []byte {
	if uint64(len(u.b)) < n {
		u.fail("truncated")
		return nil
	}
	v := u.b[:n]
	u.b = u.b[n:]
	return v
}

// size reads a big-endian length or number of n bytes.
func (u *unpacker) size(n uint64) uint64 {
	var v uint64
	for _, c := range u.take(n) {
		v = v<<8 | uint64(c)
	}
	return v
}

func (u *unpacker) bool() bool {
	switch c := u.next(); c {
	case 0xc2:
		return false
	case 0xc3:
		return true
	default:
		u.fail("0x%02x for a bool", c)
		return false
	}
}

func (u *unpacker) uint() uint64 {
	switch c := u.next(); {
	case c < 0x80:
		return uint64(c)
	case c >= 0xcc && c <= 0xcf:
		return u.size(1 << (c - 0xcc))
	default:
		u.fail("0x%02x for an unsigned integer", c)
		return 0
	}
}

func (u *unpacker) int() int64 {
	if len(u.b) > 0 && (u.b[0] < 0x80 || (u.b[0] >= 0xcc && u.b[0] <= 0xcf)) {
		v := u.uint()
		if v > math.MaxInt64 {
			u.fail("%d for a signed integer", v)
			return 0
		}
		return int64(v)
	}
	switch c := u.next(); {
	case c >= 0xe0:
		return int64(int8(c))
	case c == 0xd0:
		return int64(int8(u.size(1)))
	case c == 0xd1:
		return int64(int16(u.size(2)))
	case c == 0xd2:
		return int64(int32(u.size(4)))
	case c == 0xd3:
		return int64(u.size(8))
	default:
		u.fail("0x%02x for an integer", c)
		return 0
	}
}

func (u *unpacker) float() float64 {
	if c := u.next(); c != 0xcb {
		u.fail("0x%02x for a float", c)
		return 0
	}
	return math.Float64frombits(u.size(8))
}

func (u *unpacker) str() string {
	c := u.next()
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c >= 0xd9 && c <= 0xdb:
		n = u.size(1 << (c - 0xd9))
	default:
		u.fail("0x%02x for a string", c)
		return ""
	}
	return string(u.take(n))
}

// bin reads a bin's bytes, or reports false (reading nothing) when the
// next value is not a bin.
func (u *unpacker) bin() ([]byte, bool) {
	if len(u.b) == 0 || u.b[0] < 0xc4 || u.b[0] > 0xc6 {
		return nil, false
	}
	c := u.next()
	return u.take(u.size(1 << (c - 0xc4))), true
}

// id reads what packer.id wrote.
func (u *unpacker) id() string {
	raw, ok := u.bin()
	if !ok {
		return u.str()
	}
	if len(raw) != 16 {
		if u.err == nil {
			u.fail("an id of %d bytes", len(raw))
		}
		return ""
	}
	var s [36]byte
	hex.Encode(s[0:8], raw[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], raw[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], raw[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], raw[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], raw[10:16])
	return string(s[:])
}

// hex reads what packer.hex wrote.
func (u *unpacker) hex() string {
	raw, ok := u.bin()
	if !ok {
		return u.str()
	}
	if len(raw) == 0 {
		if u.err == nil {
			u.fail("an empty hash")
		}
		return ""
	}
	return hex.EncodeToString(raw)
}

// time reads the three layouts of the MessagePack timestamp extension.
func (u *unpacker) time() time.Time {
	var sec, nsec uint64
	switch c := u.next(); c {
	case 0xd6, 0xd7:
		if u.next() != 0xff {
			u.fail("an extension that is not a time")
			return time.Time{}
		}
		if c == 0xd6 {
			sec = u.size(4)
		} else {
			x := u.size(8)
			sec, nsec = x&(1<<34-1), x>>34
		}
	case 0xc7:
		if u.next() != 12 || u.next() != 0xff {
			u.fail("an extension that is not a time")
			return time.Time{}
		}
		nsec, sec = u.size(4), u.size(8)
	default:
		u.fail("0x%02x for a time", c)
		return time.Time{}
	}
	if nsec >= 1e9 {
		u.fail("%d nanoseconds", nsec)
		return time.Time{}
	}
	return time.Unix(int64(sec), int64(nsec)).UTC()
}

// arrayLen reads an array's header.
func (u *unpacker) arrayLen() int {
	c := u.next()
	var n uint64
	switch {
	case c >= 0x90 && c <= 0x9f:
		n = uint64(c & 0x0f)
	case c == 0xdc:
		n = u.size(2)
	case c == 0xdd:
		n = u.size(4)
	default:
		u.fail("0x%02x for an array", c)
		return 0
	}
	// Every element takes a byte at least: a length past the end is a
	// lie, and must not size an allocation.
	if n > uint64(len(u.b)) {
		u.fail("an array of %d in %d bytes", n, len(u.b))
		return 0
	}
	return int(n)
}

// list starts reading an array of at most max fields.
func (u *unpacker) list(max int) fieldList {
	n := u.arrayLen()
	if n > max {
		u.fail("%d fields where %d are known", n, max)
		return fieldList{u: u}
	}
	return fieldList{u: u, left: n}
}

// fieldList reads one array's fields in order. A field past the array's
// end, like a nil one, is empty.
type fieldList struct {
	u    *unpacker
	left int
}

// next starts a field, and reports whether it holds a value for the
// caller to read (false: missing or nil, which it skips).
func (l *fieldList) next() bool {
	if l.left == 0 || l.u.err != nil {
		return false
	}
	l.left--
	if len(l.u.b) > 0 && l.u.b[0] == 0xc0 {
		l.u.b = l.u.b[1:]
		return false
	}
	return true
}

func (l *fieldList) str() string {
	if !l.next() {
		return ""
	}
	return l.u.str()
}

func (l *fieldList) id() string {
	if !l.next() {
		return ""
	}
	return l.u.id()
}

func (l *fieldList) uint() uint64 {
	if !l.next() {
		return 0
	}
	return l.u.uint()
}

func (l *fieldList) int() int64 {
	if !l.next() {
		return 0
	}
	return l.u.int()
}

func (l *fieldList) bool() bool {
	return l.next() && l.u.bool()
}

func (l *fieldList) float() float64 {
	if !l.next() {
		return 0
	}
	return l.u.float()
}

func (l *fieldList) time() time.Time {
	if !l.next() {
		return time.Time{}
	}
	return l.u.time()
}
