package syncproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// The hand decoders (msgpack_codec.go) are written once, on msgReader, and
// run on two readers:
//
//   - byteReader reads straight from the body's bytes. Every body and
//     record whose top-level type the hand decoders know goes through it:
//     one allocation per string, none for keys, no copy into a buffer,
//     and the checks checkMsgpack makes of a body made on the way instead
//     of in a pass of their own.
//   - libReader is the library's Decoder, for hand-coded values nested in
//     types the library decodes by reflection (the stores' records).
//
// An interface rather than the Decoder path wrapping a byteReader over
// the remaining bytes: the Decoder does not hand out what it has not yet
// read, and taking it with DecodeRaw would copy every nested value once
// more. It also keeps two independent readings of the same bytes, which
// the fuzz targets hold against each other.
//
// The byteReader reads every value exactly as the library does (nil as
// an empty string, false or 0, bin as a string, any integer width, ...),
// so that a body reads the same on either path. What the library reads in
// a way of its own that the byteReader does not copy (a map behind an
// ext header, a struct written as an array) is errLibraryLayout: the
// caller then decodes the body with the library.

// msgReader reads one MessagePack value at a time, as the hand decoders
// need them.
type msgReader interface {
	// mapLen and arrayLen read a container's header: its length, or -1
	// for nil. After a length above 0, done(n) says the container's
	// values have all been read.
	mapLen() (int, error)
	arrayLen() (int, error)
	done(n int)
	// key is str for a map key: a byteReader does not allocate the
	// keys the hand-coded types know.
	key() (string, error)
	str() (string, error)
	// uint refuses a negative number (JSON does; the library would wrap
	// it), int reads any integer.
	uint() (uint64, error)
	int() (int64, error)
	bool() (bool, error)
	float() (float64, error)
	// time reads the timestamp extension (or nil) in UTC.
	time() (time.Time, error)
	// isNil consumes a nil and reports it, for pointer fields.
	isNil() (bool, error)
	skip() error
	// raw is the next value's encoding, and sub a reader of the same kind
	// over one.
	raw() ([]byte, error)
	sub(raw []byte) msgReader
}

var (
	_ msgReader = (*byteReader)(nil)
	_ msgReader = libReader{}
)

// errLibraryLayout is a byteReader's refusal of a layout it leaves to the
// library (see above); never an answer to a client.
var errLibraryLayout = errors.New("msgpack: a layout read by the library only")

// errTruncated is the byteReader's error for a value cut short.
var errTruncated = errors.New("msgpack: the value is truncated")

// byteReader reads MessagePack from a byte slice.
type byteReader struct {
	data []byte
	pos  int
	// strict makes the checks checkMsgpack makes of a body: every str
	// and bin (read or skipped) is UTF-8, and no more than MaxDepth-1 non-empty
	// containers are open at once. A store's own records are read
	// without them, as the library reads them.
	strict bool
	// depth counts the non-empty containers open.
	depth int
	// pending is skip's stack of values left in each container it
	// entered.
	pending []uint64
}

// decodeFast decodes data into v on a byteReader when v is of a type
// the hand decoders know; handled is false when it is not. strict checks
// what checkMsgpack checks and refuses bytes after the value.
func decodeFast(data []byte, v any, strict bool) (handled bool, err error) {
	r := &byteReader{data: data, strict: strict}
	switch v := v.(type) {
	case envelopeDecoder:
		err = v.decodeEnvelope(r)
	case fieldsDecoder:
		err = v.decodeFields(r)
	default:
		return false, nil
	}
	if err == nil && strict && r.pos != len(data) {
		err = fmt.Errorf("msgpack: %d bytes after the end of the value", len(data)-r.pos)
	}
	return true, err
}

// fieldsDecoder is a hand-coded type: its field list, on either reader.
type fieldsDecoder interface {
	decodeFields(r msgReader) error
}

// envelopeDecoder is a body the library decodes by reflection (its
// struct tags are its field list) that a byteReader decodes by hand on
// the hot paths: push and pull, both ways.
type envelopeDecoder interface {
	decodeEnvelope(r *byteReader) error
}

func (r *byteReader) left() int { return len(r.data) - r.pos }

func (r *byteReader) peek() (byte, error) {
	if r.pos >= len(r.data) {
		return 0, errTruncated
	}
	return r.data[r.pos], nil
}

func (r *byteReader) next() (byte, error) {
	if r.pos >= len(r.data) {
		return 0, errTruncated
	}
	c := r.data[r.pos]
	r.pos++
	return c, nil
}

// uintN reads a big-endian unsigned integer of n bytes (1, 2, 4 or 8).
func (r *byteReader) uintN(n int) (uint64, error) {
	if r.left() < n {
		return 0, errTruncated
	}
	b := r.data[r.pos : r.pos+n]
	r.pos += n
	switch n {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	}
	return binary.BigEndian.Uint64(b), nil
}

func invalidCode(c byte, decoding string) error {
	return fmt.Errorf("msgpack: invalid code=%x decoding %s", c, decoding)
}

// open enters a container of n values (a map's entries count twice).
func (r *byteReader) open(n uint64) error {
	// Each value takes a byte at least: a count beyond what is left is
	// refused before anything is allocated for it.
	if n > uint64(r.left()) {
		return errTruncated
	}
	if n > 0 {
		if r.strict && r.depth >= MaxDepth-1 {
			return fmt.Errorf("msgpack: nested deeper than %d levels", MaxDepth)
		}
		r.depth++
	}
	return nil
}

func (r *byteReader) done(n int) {
	if n > 0 {
		r.depth--
	}
}

// mapLen reads a map header as the library's DecodeMapLen does.
func (r *byteReader) mapLen() (int, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if isExtCode(c) {
		// DecodeMapLen reads a map behind an ext header.
		return 0, errLibraryLayout
	}
	return r.structLen()
}

// structLen reads a map header as the library's reflection reads a
// struct: a map or nil; an array (a struct as the list of its fields) is
// left to the library.
func (r *byteReader) structLen() (int, error) {
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c == 0xc0:
		return -1, nil
	case c >= 0x80 && c <= 0x8f:
		n = uint64(c & 0x0f)
	case c == 0xde:
		n, err = r.uintN(2)
	case c == 0xdf:
		n, err = r.uintN(4)
	case c >= 0x90 && c <= 0x9f || c == 0xdc || c == 0xdd:
		return 0, errLibraryLayout
	default:
		return 0, invalidCode(c, "map length")
	}
	if err != nil {
		return 0, err
	}
	if err := r.open(2 * n); err != nil {
		return 0, err
	}
	return int(n), nil
}

func (r *byteReader) arrayLen() (int, error) {
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c == 0xc0:
		return -1, nil
	case c >= 0x90 && c <= 0x9f:
		n = uint64(c & 0x0f)
	case c == 0xdc:
		n, err = r.uintN(2)
	case c == 0xdd:
		n, err = r.uintN(4)
	default:
		return 0, invalidCode(c, "array length")
	}
	if err != nil {
		return 0, err
	}
	if err := r.open(n); err != nil {
		return 0, err
	}
	return int(n), nil
}

// strBytes reads a str or bin (as DecodeString does), or nil as empty.
// Strict, either must be UTF-8: the library reads a bin as a string.
func (r *byteReader) strBytes() ([]byte, error) {
	b, err := r.strBytesUnchecked()
	if err == nil && r.strict && !utf8.Valid(b) {
		return nil, errNotUTF8
	}
	return b, err
}

var errNotUTF8 = errors.New("msgpack: a string is not UTF-8")

// strBytesUnchecked is strBytes without the UTF-8 check.
func (r *byteReader) strBytesUnchecked() ([]byte, error) {
	c, err := r.next()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c == 0xc0:
		return nil, nil
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9, c == 0xc4:
		n, err = r.uintN(1)
	case c == 0xda, c == 0xc5:
		n, err = r.uintN(2)
	case c == 0xdb, c == 0xc6:
		n, err = r.uintN(4)
	default:
		return nil, invalidCode(c, "string/bytes length")
	}
	if err != nil {
		return nil, err
	}
	if n > uint64(r.left()) {
		return nil, errTruncated
	}
	b := r.data[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

func (r *byteReader) str() (string, error) {
	b, err := r.strBytes()
	return string(b), err
}

func (r *byteReader) key() (string, error) {
	b, err := r.strBytesUnchecked()
	if err != nil {
		return "", err
	}
	// A known key is UTF-8: only another needs the check.
	if k, ok := knownKeys.lookup(b); ok {
		return k, nil
	}
	if r.strict && !utf8.Valid(b) {
		return "", errNotUTF8
	}
	return string(b), nil
}

// knownKeys are the keys of the types a byteReader decodes, each kept
// once so that reading one allocates nothing. They come from the types'
// JSON names, which the wire keys are.
var knownKeys = func() *keyTable {
	t := &keyTable{}
	for _, v := range []any{Warning{}, Attempt{}, Review{}, Escalation{}, Flag{}, Location{}, Op{}, OpBody{},
		Result{}, WarningItem{}, Change{}, PushRequest{}, PushResponse{}, PullRequest{}, PullResponse{}, Have{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				t.add(name)
			}
		}
	}
	return t
}()

// keyTable is a small open-addressing set of strings, looked up by bytes:
// a map's lookup took a third of a pull page's decoding.
type keyTable struct {
	slots [256]string
	n     int
}

func keySlot(b []byte) int {
	return (len(b)*31 + int(b[0])*7 + int(b[len(b)-1])*3 + int(b[len(b)/2])) & 255
}

func (t *keyTable) add(k string) {
	if _, ok := t.lookup([]byte(k)); ok {
		return
	}
	if t.n++; t.n > len(t.slots)/2 {
		panic("syncproto: keyTable too full")
	}
	i := keySlot([]byte(k))
	for t.slots[i] != "" {
		i = (i + 1) & 255
	}
	t.slots[i] = k
}

func (t *keyTable) lookup(b []byte) (string, bool) {
	if len(b) == 0 {
		return "", false
	}
	for i := keySlot(b); ; i = (i + 1) & 255 {
		k := t.slots[i]
		if k == "" {
			return "", false
		}
		if k == string(b) {
			return k, true
		}
	}
}

// uint reads as readUint does: a signed code through int, refused when
// negative; nil is 0.
func (r *byteReader) uint() (uint64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if c >= 0xe0 || c >= 0xd0 && c <= 0xd3 {
		n, err := r.int()
		if err != nil {
			return 0, err
		}
		if n < 0 {
			return 0, fmt.Errorf("msgpack: negative number %d for an unsigned field", n)
		}
		return uint64(n), nil
	}
	r.pos++
	switch {
	case c == 0xc0:
		return 0, nil
	case c <= 0x7f:
		return uint64(c), nil
	case c == 0xcc:
		return r.uintN(1)
	case c == 0xcd:
		return r.uintN(2)
	case c == 0xce:
		return r.uintN(4)
	case c == 0xcf:
		return r.uintN(8)
	}
	return 0, invalidCode(c, "uint64")
}

// int reads as DecodeInt64 does: any integer (a uint64 above the int64
// range wraps, as there), nil is 0.
func (r *byteReader) int() (int64, error) {
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	return r.intAfter(c)
}

func (r *byteReader) intAfter(c byte) (int64, error) {
	switch {
	case c <= 0x7f || c >= 0xe0:
		return int64(int8(c)), nil
	case c == 0xc0:
		return 0, nil
	case c >= 0xcc && c <= 0xcf:
		n, err := r.uintN(1 << (c - 0xcc))
		return int64(n), err
	case c == 0xd0:
		n, err := r.uintN(1)
		return int64(int8(n)), err
	case c == 0xd1:
		n, err := r.uintN(2)
		return int64(int16(n)), err
	case c == 0xd2:
		n, err := r.uintN(4)
		return int64(int32(n)), err
	case c == 0xd3:
		n, err := r.uintN(8)
		return int64(n), err
	}
	return 0, invalidCode(c, "int64")
}

func (r *byteReader) bool() (bool, error) {
	c, err := r.next()
	if err != nil {
		return false, err
	}
	switch c {
	case 0xc0, 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	}
	return false, invalidCode(c, "bool")
}

// float reads as DecodeFloat64 does: either float width, or an integer.
func (r *byteReader) float() (float64, error) {
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	switch c {
	case 0xca:
		n, err := r.uintN(4)
		return float64(math.Float32frombits(uint32(n))), err
	case 0xcb:
		n, err := r.uintN(8)
		return math.Float64frombits(n), err
	}
	n, err := r.intAfter(c)
	if err != nil {
		return 0, invalidCode(c, "float64")
	}
	return float64(n), nil
}

// time reads the timestamp extension as readTime does: its three
// layouts (fixext 4, fixext 8, ext 8 of 12 bytes), type -1 or 13 (as
// NodeJS writes it), or nil for the zero time.
func (r *byteReader) time() (time.Time, error) {
	c, err := r.next()
	if err != nil {
		return time.Time{}, err
	}
	var n uint64
	switch c {
	case 0xc0:
		return time.Time{}, nil
	case 0xd6:
		n = 4
	case 0xd7:
		n = 8
	case 0xc7:
		if n, err = r.uintN(1); err != nil {
			return time.Time{}, err
		}
	default:
		return time.Time{}, fmt.Errorf("msgpack: a time must be the timestamp extension, not code 0x%02x", c)
	}
	typ, err := r.next()
	if err != nil {
		return time.Time{}, err
	}
	if int8(typ) != -1 && typ != 13 {
		return time.Time{}, fmt.Errorf("msgpack: invalid time ext id=%d", int8(typ))
	}
	return r.timeData(n)
}

// timeData reads the n bytes of a timestamp extension's data.
func (r *byteReader) timeData(n uint64) (time.Time, error) {
	if n > uint64(r.left()) {
		return time.Time{}, errTruncated
	}
	b := r.data[r.pos : r.pos+int(n)]
	r.pos += int(n)
	switch n {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(b)), 0).UTC(), nil
	case 8:
		x := binary.BigEndian.Uint64(b)
		return time.Unix(int64(x&(1<<34-1)), int64(x>>34)).UTC(), nil
	case 12:
		return time.Unix(int64(binary.BigEndian.Uint64(b[4:])), int64(binary.BigEndian.Uint32(b[:4]))).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("msgpack: invalid ext len=%d decoding time", n)
}

// extTime reads a time.Time field as the library's reflection does with
// the decoder codec.go registers: an ext of any layout, of type -1 and 4,
// 8 or 12 bytes. A nil is left to the library.
func (r *byteReader) extTime() (time.Time, error) {
	c, err := r.next()
	if err != nil {
		return time.Time{}, err
	}
	var n uint64
	switch {
	case c == 0xc0:
		return time.Time{}, errLibraryLayout
	case c >= 0xd4 && c <= 0xd8:
		n = 1 << (c - 0xd4)
	case c >= 0xc7 && c <= 0xc9:
		n, err = r.uintN(1 << (c - 0xc7))
	default:
		return time.Time{}, invalidCode(c, "ext len")
	}
	if err != nil {
		return time.Time{}, err
	}
	typ, err := r.next()
	if err != nil {
		return time.Time{}, err
	}
	if int8(typ) != -1 {
		return time.Time{}, fmt.Errorf("msgpack: got ext type=%d, wanted -1", int8(typ))
	}
	return r.timeData(n)
}

func (r *byteReader) isNil() (bool, error) {
	c, err := r.peek()
	if err != nil {
		return false, err
	}
	if c == 0xc0 {
		r.pos++
		return true, nil
	}
	return false, nil
}

func isExtCode(c byte) bool { return c >= 0xd4 && c <= 0xd8 || c >= 0xc7 && c <= 0xc9 }

// skip passes over one value of any type, without recursion: a body of a
// million nested arrays costs no stack. Strict, it makes checkMsgpack's
// checks of what it passes over.
func (r *byteReader) skip() error {
	r.pending = append(r.pending[:0], 1)
	for len(r.pending) > 0 {
		top := len(r.pending) - 1
		if r.pending[top] == 0 {
			r.pending = r.pending[:top]
			continue
		}
		r.pending[top]--
		children, err := r.skipHeader()
		if err != nil {
			return err
		}
		if children == 0 {
			continue
		}
		if children > uint64(r.left()) {
			return errTruncated
		}
		// The containers open: those the typed reads are in, and those
		// this skip is in (all of pending but the value it started at).
		if r.strict && r.depth+len(r.pending)-1 >= MaxDepth-1 {
			return fmt.Errorf("msgpack: nested deeper than %d levels", MaxDepth)
		}
		r.pending = append(r.pending, children)
	}
	return nil
}

// skipHeader passes over one value's code and what it holds of its own
// (a str's bytes, an ext's data) and returns how many values it contains
// (twice a map's length).
func (r *byteReader) skipHeader() (children uint64, err error) {
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	var skip uint64
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
	case c >= 0x80 && c <= 0x8f:
		children = uint64(c&0x0f) * 2
	case c >= 0x90 && c <= 0x9f:
		children = uint64(c & 0x0f)
	case c >= 0xa0 && c <= 0xbf || c >= 0xd9 && c <= 0xdb || c >= 0xc4 && c <= 0xc6:
		r.pos--
		_, err = r.strBytes()
		return 0, err
	case c == 0xc7, c == 0xc8, c == 0xc9:
		skip, err = r.uintN(1 << (c - 0xc7))
		skip++
	case c == 0xca, c == 0xce, c == 0xd2:
		skip = 4
	case c == 0xcb, c == 0xcf, c == 0xd3:
		skip = 8
	case c == 0xcc, c == 0xd0:
		skip = 1
	case c == 0xcd, c == 0xd1:
		skip = 2
	case c >= 0xd4 && c <= 0xd8:
		skip = 1<<(c-0xd4) + 1
	case c == 0xdc:
		children, err = r.uintN(2)
	case c == 0xdd:
		children, err = r.uintN(4)
	case c == 0xde:
		children, err = r.uintN(2)
		children *= 2
	case c == 0xdf:
		children, err = r.uintN(4)
		children *= 2
	default:
		return 0, fmt.Errorf("msgpack: unknown code %x", c)
	}
	if err != nil {
		return 0, err
	}
	if skip > uint64(r.left()) {
		return 0, errTruncated
	}
	r.pos += int(skip)
	return children, nil
}

func (r *byteReader) raw() ([]byte, error) {
	start := r.pos
	if err := r.skip(); err != nil {
		return nil, err
	}
	return r.data[start:r.pos:r.pos], nil
}

// sub reads a value raw took: skip has made the strict checks of it
// already.
func (r *byteReader) sub(raw []byte) msgReader { return &byteReader{data: raw} }

// libReader reads with the library's Decoder, as the hand decoders
// always did.
type libReader struct{ d *msgpack.Decoder }

func (l libReader) mapLen() (int, error)   { return l.d.DecodeMapLen() }
func (l libReader) arrayLen() (int, error) { return l.d.DecodeArrayLen() }
func (l libReader) done(int)               {}
func (l libReader) key() (string, error)   { return l.d.DecodeString() }
func (l libReader) str() (string, error)   { return l.d.DecodeString() }
func (l libReader) int() (int64, error)    { return l.d.DecodeInt64() }
func (l libReader) bool() (bool, error)    { return l.d.DecodeBool() }
func (l libReader) float() (float64, error) {
	return l.d.DecodeFloat64()
}
func (l libReader) skip() error { return l.d.Skip() }

func (l libReader) uint() (uint64, error) {
	c, err := l.d.PeekCode()
	if err != nil {
		return 0, err
	}
	if c >= 0xe0 || c >= 0xd0 && c <= 0xd3 {
		n, err := l.d.DecodeInt64()
		if err != nil {
			return 0, err
		}
		if n < 0 {
			return 0, fmt.Errorf("msgpack: negative number %d for an unsigned field", n)
		}
		return uint64(n), nil
	}
	return l.d.DecodeUint64()
}

func (l libReader) time() (time.Time, error) {
	c, err := l.d.PeekCode()
	if err != nil {
		return time.Time{}, err
	}
	switch c {
	case 0xc0:
		return time.Time{}, l.d.DecodeNil()
	case 0xd6, 0xd7, 0xc7:
		t, err := l.d.DecodeTime()
		return t.UTC(), err
	}
	// The protocol's times are the timestamp extension; the library would
	// also read strings and numbers.
	return time.Time{}, fmt.Errorf("msgpack: a time must be the timestamp extension, not code 0x%02x", c)
}

func (l libReader) isNil() (bool, error) {
	c, err := l.d.PeekCode()
	if err != nil {
		return false, err
	}
	if c == 0xc0 {
		return true, l.d.DecodeNil()
	}
	return false, nil
}

func (l libReader) raw() ([]byte, error) { return l.d.DecodeRaw() }

func (l libReader) sub(raw []byte) msgReader {
	d := msgpack.NewDecoder(bytes.NewReader(raw))
	d.SetCustomStructTag("json")
	return libReader{d}
}
