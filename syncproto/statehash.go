package syncproto

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// StateHashLen is the length of a StateHash: 8 bytes in hex.
const StateHashLen = 16

// StateHash names a warning's state in a pull's have (PullRequest.Have):
// the hex of the first 8 bytes of the SHA-256 of w's MessagePack encoding,
// exactly as a full-detail pull page carries it. The server and a client
// that computed the same state get the same hash; a client whose state
// differs in any byte (a name it could not know, a photo it thought
// missing) gets another, and the server sends the state as before. w must
// be a full warning, not a summary.
func StateHash(w *Warning) (string, error) {
	buf := encodeBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			encodeBuffers.Put(buf)
		}
	}()
	if err := encodeMsgpack(buf, w); err != nil {
		return "", fmt.Errorf("state hash of warning %s: %w", w.ID, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:StateHashLen/2]), nil
}

// ValidStateHash reports whether h has StateHash's form: 16 lowercase hex
// digits.
func ValidStateHash(h string) bool {
	if len(h) != StateHashLen {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
