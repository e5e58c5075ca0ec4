package syncproto

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Media types of the two encodings.
const (
	MediaJSON    = "application/json"
	MediaMsgpack = "application/msgpack"
	MediaCSV     = "text/csv"
)

// MaxDepth bounds the nesting of a decoded body. Real bodies nest four or five
// levels; a deeper one is refused before the decoder recurses into it.
const MaxDepth = 32

// Codec encodes and decodes protocol bodies in one media type.
type Codec interface {
	MediaType() string
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v; a malformed body is an invalid_request.
	Unmarshal(data []byte, v any) error
}

// JSON and Msgpack are the two codecs of the protocol.
var (
	JSON    Codec = jsonCodec{}
	Msgpack Codec = msgpackCodec{}
)

// CodecFor returns the codec of a media type (parameters ignored), or nil.
func CodecFor(mediaType string) Codec {
	mt, _, err := mime.ParseMediaType(mediaType)
	if err != nil {
		mt = strings.TrimSpace(strings.ToLower(mediaType))
	}
	switch mt {
	case MediaJSON:
		return JSON
	case MediaMsgpack, "application/x-msgpack", "application/vnd.msgpack":
		return Msgpack
	}
	return nil
}

// Negotiate picks the response codec: the request's Accept type, else its
// Content-Type, else JSON.
func Negotiate(accept, contentType string) Codec {
	for _, part := range strings.Split(accept, ",") {
		if c := CodecFor(part); c != nil {
			return c
		}
	}
	if c := CodecFor(contentType); c != nil {
		return c
	}
	return JSON
}

type jsonCodec struct{}

func (jsonCodec) MediaType() string { return MediaJSON }

func (jsonCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

func (jsonCodec) Unmarshal(data []byte, v any) error {
	if err := checkJSONDepth(data, MaxDepth); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return jsonError(err)
	}
	return nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return InvalidField(field, "%s must be of type %s, not %s", field, typeErr.Type, typeErr.Value)
	}
	var synErr *json.SyntaxError
	if errors.As(err, &synErr) {
		return InvalidField("body", "body is not valid JSON at byte %d: %s", synErr.Offset, synErr.Error())
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return InvalidField("body", "body is not valid JSON: %s", err.Error())
}

// checkJSONDepth refuses bodies nested deeper than max without parsing them.
func checkJSONDepth(data []byte, max int) error {
	deep := false
	scanJSON(data, func(c byte, depth int) bool {
		deep = depth > max
		return !deep
	})
	if deep {
		return InvalidField("body", "body is nested deeper than %d levels", max)
	}
	return nil
}

// scanJSON calls visit for each byte outside string literals with the
// nesting depth after it, until visit returns false. It does not check the
// syntax: the decoder does.
func scanJSON(data []byte, visit func(c byte, depth int) bool) {
	depth := 0
	inString, escaped := false, false
	for _, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		}
		if !visit(c, depth) {
			return
		}
	}
}

type msgpackCodec struct{}

func (msgpackCodec) MediaType() string { return MediaMsgpack }

func (msgpackCodec) Marshal(v any) ([]byte, error) {
	return marshalExact(v)
}

// encodeBuffers are the buffers encodings are made in before they are
// copied out at their exact length: a value grown in a new buffer
// allocated about twice its size on the way (the store encodes several
// records for every op it applies).
var encodeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// marshalExact is v's MessagePack encoding in a slice of its own, of
// exactly its length.
func marshalExact(v any) ([]byte, error) {
	buf := encodeBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		// A rare huge value (a big pull) is not kept for every later one.
		if buf.Cap() <= 1<<20 {
			encodeBuffers.Put(buf)
		}
	}()
	if err := encodeMsgpack(buf, v); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()), nil
}

// encodeMsgpack writes v to w as the wire encodes it.
func encodeMsgpack(w io.Writer, v any) error {
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(w)
	enc.SetCustomStructTag("json")
	enc.SetOmitEmpty(false)
	// Integers in their smallest form: a no-change pull fits in fewer bytes.
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("msgpack encode: %w", err)
	}
	return nil
}

// MsgpackSize is the length of v's MessagePack encoding, exactly as
// Msgpack.Marshal would make it, counted without keeping the bytes: what
// a pull's byte budget (PullRequest.MaxBytes) counts of each change.
func MsgpackSize(v any) (int, error) {
	var n byteCounter
	if err := encodeMsgpack(&n, v); err != nil {
		return 0, err
	}
	return int(n), nil
}

// byteCounter is an io.Writer that only counts.
type byteCounter int

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

// WriteByte lets the encoder write single bytes without a slice.
func (c *byteCounter) WriteByte(byte) error {
	*c++
	return nil
}

func (msgpackCodec) Unmarshal(data []byte, v any) error {
	if handled, err := decodeFast(data, v, true); handled {
		if err == nil {
			return nil
		}
		// A body the byteReader refuses is decoded again as it always
		// was: that gives bad input the error it always got, and reads
		// the layouts the byteReader leaves to the library. Bad bodies
		// are rare; good ones take the fast path only.
		reflect.ValueOf(v).Elem().SetZero()
	}
	return unmarshalLibrary(data, v)
}

// unmarshalLibrary is Msgpack.Unmarshal by the library: checkMsgpack's
// walk, then the library's decoder, which calls the hand decoders through
// libReader.
func unmarshalLibrary(data []byte, v any) error {
	if err := checkMsgpack(data, MaxDepth); err != nil {
		return err
	}
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(data))
	dec.SetCustomStructTag("json")
	if err := dec.Decode(v); err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return pe
		}
		if located := locateMsgpackError(data, v); located != nil {
			return located
		}
		return InvalidField("body", "body is not valid MessagePack for this request: %s", err.Error())
	}
	return nil
}

// locateMsgpackError finds which field of a well-formed MessagePack body has
// the wrong type, which the MessagePack decoder does not say: it decodes the
// body generically, re-encodes it as JSON and lets the JSON decoder name
// the field. It runs only for bodies already refused, and returns nil when
// it cannot tell.
func locateMsgpackError(data []byte, v any) *Error {
	var generic any
	if err := msgpack.Unmarshal(data, &generic); err != nil {
		return nil
	}
	js, err := json.Marshal(jsonable(generic))
	if err != nil {
		return nil
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil
	}
	err = json.Unmarshal(js, reflect.New(t.Elem()).Interface())
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) || typeErr.Field == "" {
		return nil
	}
	return InvalidField(typeErr.Field, "%s must be of type %s", typeErr.Field, typeErr.Type)
}

// jsonable turns a generically decoded MessagePack value into one
// encoding/json can marshal (maps with non-string keys are dropped).
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	case map[any]any:
		return nil
	}
	return v
}

func init() {
	// The library decodes a timestamp in the process's local zone. Protocol
	// times are UTC (PROTOCOL.md section 1), and a state read back from
	// MessagePack is served as JSON, where the zone shows: decode as UTC.
	msgpack.RegisterExtDecoder(-1, time.Time{}, decodeUTCTime)
	// The library wraps a negative integer into an unsigned field
	// (client_seq -3 becomes 2^64-3); JSON refuses it, and so must this.
	msgpack.Register(uint64(0), nil, decodeStrictUint64)
}

func decodeStrictUint64(d *msgpack.Decoder, v reflect.Value) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	signed := c >= msgpcode.NegFixedNumLow || (c >= msgpcode.Int8 && c <= msgpcode.Int64)
	if !signed {
		n, err := d.DecodeUint64()
		if err != nil {
			return err
		}
		v.SetUint(n)
		return nil
	}
	n, err := d.DecodeInt64()
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("msgpack: negative number %d for an unsigned field", n)
	}
	v.SetUint(uint64(n))
	return nil
}

// decodeUTCTime reads the three layouts of the timestamp extension.
func decodeUTCTime(d *msgpack.Decoder, v reflect.Value, extLen int) error {
	var b [12]byte
	if extLen != 4 && extLen != 8 && extLen != 12 {
		return fmt.Errorf("msgpack: invalid ext len=%d decoding time", extLen)
	}
	if err := d.ReadFull(b[:extLen]); err != nil {
		return err
	}
	var t time.Time
	switch extLen {
	case 4:
		t = time.Unix(int64(binary.BigEndian.Uint32(b[:4])), 0)
	case 8:
		x := binary.BigEndian.Uint64(b[:8])
		t = time.Unix(int64(x&(1<<34-1)), int64(x>>34))
	case 12:
		t = time.Unix(int64(binary.BigEndian.Uint64(b[4:])), int64(binary.BigEndian.Uint32(b[:4])))
	}
	v.Set(reflect.ValueOf(t.UTC()))
	return nil
}

// MarshalMsgpack and UnmarshalMsgpack encode values the way the wire does,
// for the stores that keep protocol types as MessagePack (the server's and
// the SDK's): one encoding for the wire and the disk.
func MarshalMsgpack(v any) ([]byte, error) {
	b, err := marshalExact(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// UnmarshalMsgpack decodes what MarshalMsgpack encoded. Unlike
// Msgpack.Unmarshal it trusts its input (a store's own records): no
// depth or UTF-8 checks, nothing checked after the value, and decode
// errors as they are, not as protocol errors. Both read the hand-coded
// types and the push and pull bodies straight from data (byteReader).
func UnmarshalMsgpack(data []byte, v any) error {
	if handled, err := decodeFast(data, v, false); handled {
		if err == nil {
			return nil
		}
		// Errors as the library gives them, and the layouts only it reads.
		reflect.ValueOf(v).Elem().SetZero()
	}
	return unmarshalMsgpackLibrary(data, v)
}

// unmarshalMsgpackLibrary is UnmarshalMsgpack by the library.
func unmarshalMsgpackLibrary(data []byte, v any) error {
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(data))
	dec.SetCustomStructTag("json")
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// checkMsgpack walks a MessagePack document without recursion and refuses it
// when it is truncated, holds more than one value, nests deeper than max, or
// has a str or bin that is not UTF-8.
// The decoder recurses on nesting, so a megabyte of nested one-element
// arrays would otherwise exhaust the stack.
func checkMsgpack(data []byte, max int) error {
	bad := func(format string, args ...any) error {
		return InvalidField("body", "body is not valid MessagePack: "+format, args...)
	}
	// pending[i] is how many values remain in the container at depth i.
	pending := []uint64{1}
	p := 0
	for len(pending) > 0 {
		if pending[len(pending)-1] == 0 {
			pending = pending[:len(pending)-1]
			continue
		}
		pending[len(pending)-1]--
		if p >= len(data) {
			return bad("truncated at byte %d", p)
		}
		c := data[p]
		p++
		var skip, children uint64
		need := func(n int) (uint64, bool) {
			if p+n > len(data) {
				return 0, false
			}
			var v uint64
			for i := 0; i < n; i++ {
				v = v<<8 | uint64(data[p+i])
			}
			p += n
			return v, true
		}
		ok := true
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			children = uint64(c&0x0f) * 2
		case c >= 0x90 && c <= 0x9f:
			children = uint64(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = uint64(c & 0x1f)
		case c == 0xc4 || c == 0xd9:
			skip, ok = need(1)
		case c == 0xc5 || c == 0xda:
			skip, ok = need(2)
		case c == 0xc6 || c == 0xdb:
			skip, ok = need(4)
		case c == 0xc7:
			skip, ok = need(1)
			skip++
		case c == 0xc8:
			skip, ok = need(2)
			skip++
		case c == 0xc9:
			skip, ok = need(4)
			skip++
		case c == 0xca:
			skip = 4
		case c == 0xcb:
			skip = 8
		case c == 0xcc || c == 0xd0:
			skip = 1
		case c == 0xcd || c == 0xd1:
			skip = 2
		case c == 0xce || c == 0xd2:
			skip = 4
		case c == 0xcf || c == 0xd3:
			skip = 8
		case c == 0xd4:
			skip = 2
		case c == 0xd5:
			skip = 3
		case c == 0xd6:
			skip = 5
		case c == 0xd7:
			skip = 9
		case c == 0xd8:
			skip = 17
		case c == 0xdc:
			children, ok = need(2)
		case c == 0xdd:
			children, ok = need(4)
		case c == 0xde:
			children, ok = need(2)
			children *= 2
		case c == 0xdf:
			children, ok = need(4)
			children *= 2
		default:
			return bad("unknown type byte 0x%02x at byte %d", c, p-1)
		}
		if !ok || skip > uint64(len(data)-p) {
			return bad("truncated at byte %d", p)
		}
		// A str is UTF-8 (JSON's decoder replaces bad bytes; this one would
		// keep them, and the same state would read differently in the two).
		// So is a bin: the protocol has no binary field, and the decoder
		// reads a bin where it expects a string.
		if (c >= 0xa0 && c <= 0xbf || c >= 0xd9 && c <= 0xdb || c >= 0xc4 && c <= 0xc6) && !utf8.Valid(data[p:p+int(skip)]) {
			return bad("string at byte %d is not UTF-8", p)
		}
		p += int(skip)
		if children > 0 {
			// Each child takes at least one byte: a count beyond what is
			// left is a lie, refused before anything is allocated for it.
			if children > uint64(len(data)-p) {
				return bad("container at byte %d claims more items than the body holds", p)
			}
			if len(pending) >= max {
				return InvalidField("body", "body is nested deeper than %d levels", max)
			}
			pending = append(pending, children)
		}
	}
	if p != len(data) {
		return bad("%d bytes after the end of the value", len(data)-p)
	}
	return nil
}

// Decode reads all of r (at most limit bytes) and decodes it with c. A body
// over the limit is payload_too_large.
func Decode(c Codec, r io.Reader, limit int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if int64(len(data)) > limit {
		return Errorf(CodePayloadTooLarge, "the body is larger than %d bytes; split it", limit)
	}
	return c.Unmarshal(data, v)
}

// changeWire is a Change with its data still encoded, so it can be decoded
// by entity.
type changeWire struct {
	Kind    string             `json:"kind"`
	Entity  string             `json:"entity"`
	ID      string             `json:"id"`
	Version uint64             `json:"version"`
	Data    json.RawMessage    `json:"data,omitempty" msgpack:"-"`
	MPData  msgpack.RawMessage `json:"-" msgpack:"data,omitempty"`
}

// UnmarshalJSON decodes data by entity into *Warning, *Unit or *DirectoryUser.
func (c *Change) UnmarshalJSON(b []byte) error {
	var w changeWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	c.Kind, c.Entity, c.ID, c.Version, c.Data = w.Kind, w.Entity, w.ID, w.Version, nil
	if len(w.Data) == 0 || string(w.Data) == "null" {
		return nil
	}
	target := newEntity(w.Entity)
	if target == nil {
		return nil
	}
	if err := json.Unmarshal(w.Data, target); err != nil {
		return err
	}
	c.Data = target
	return nil
}

func newEntity(entity string) any {
	switch entity {
	case EntityWarning:
		return &Warning{}
	case EntityUnit:
		return &Unit{}
	case EntityUser:
		return &DirectoryUser{}
	}
	return nil
}
