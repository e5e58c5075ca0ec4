package syncproto

// The two MessagePack decoding paths, apart, for the tests that hold them
// against each other.

// DecodeMsgpackFast decodes data into v on a byteReader alone; handled is
// false when v's type has no byteReader decoder. strict is as
// Msgpack.Unmarshal reads (checkMsgpack's checks, nothing after the
// value), else as UnmarshalMsgpack reads.
func DecodeMsgpackFast(data []byte, v any, strict bool) (handled bool, err error) {
	return decodeFast(data, v, strict)
}

// DecodeMsgpackLibrary decodes data into v with the library alone, as
// Msgpack.Unmarshal (strict) or UnmarshalMsgpack did before the byteReader.
func DecodeMsgpackLibrary(data []byte, v any, strict bool) error {
	if strict {
		return unmarshalLibrary(data, v)
	}
	return unmarshalMsgpackLibrary(data, v)
}

// ErrLibraryLayout is the byteReader's refusal of a layout it leaves to
// the library.
var ErrLibraryLayout = errLibraryLayout

// CheckMsgpack is checkMsgpack's walk of a body.
func CheckMsgpack(data []byte) error { return checkMsgpack(data, MaxDepth) }
