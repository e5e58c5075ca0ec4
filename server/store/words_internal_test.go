package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
)

// TestWords_Layout: a word's position is part of the store's layout
// (schema 18): the first 61 words, as stored values hold them, may not
// change. New words go at the end, which leaves this digest as it is.
func TestWords_Layout(t *testing.T) {
	const stored = 61
	sum := sha256.Sum256([]byte(strings.Join(words[:stored+1], "\n")))
	if got, want := hex.EncodeToString(sum[:]), "6711f97b75e6a0004700c74de171bfe2352bf136b49e7c310298d87741ce0d7c"; got != want {
		t.Fatalf("words[:%d] digest %s, want %s: a stored word moved or changed; append new words instead", stored+1, got, want)
	}
}

// TestWords_ProtocolStrings: the strings the server writes in nearly every
// record are words, so that the writer puts a byte for each.
func TestWords_ProtocolStrings(t *testing.T) {
	for _, s := range []string{
		syncproto.OpDispatched, syncproto.OpAssigned, syncproto.OpRecorded, syncproto.OpEscalated,
		syncproto.OpReviewed, syncproto.OpCreated, syncproto.OpAnswered,
		EntryUnit, EntryUser, EntryPhoto, EntryArchived, EntryRedacted,
		syncproto.StatusApplied, syncproto.StatusDuplicate, syncproto.StatusRejected,
		syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned,
		syncproto.WarningInProgress, syncproto.WarningResolved, syncproto.WarningClosed,
		syncproto.RiskHigh, syncproto.RiskMedium, syncproto.RiskLow,
		syncproto.MethodVisit, syncproto.MethodPhone, syncproto.MethodVideo, syncproto.MethodOther,
		syncproto.OutcomeDissuaded, syncproto.OutcomeAlreadyDefrauded, syncproto.OutcomeNotTarget,
		syncproto.OutcomeUnreachable, syncproto.OutcomeRefused,
		syncproto.FlagStaleAssignee, syncproto.FlagAfterClose, syncproto.FlagConflictingOutcomes,
		syncproto.FlagStaleReview, syncproto.FlagFutureTime,
		syncproto.DecisionApprove, syncproto.DecisionReturn,
		syncproto.CodeInvalidRequest, syncproto.CodeUnauthorized, syncproto.CodeForbidden,
		syncproto.CodeNotFound, syncproto.CodePayloadTooLarge, syncproto.CodeOutOfOrder,
		syncproto.CodeInvalidState, syncproto.CodeSeqReused, syncproto.CodeWarningFull,
		syncproto.CodePhotoQuotaExceeded, syncproto.CodeRateLimited, syncproto.CodeInternal,
	} {
		if _, ok := wordCodes[s]; !ok {
			t.Errorf("%q is not a word", s)
		}
	}
}

// TestWords_RoundTrip: a word is one byte and reads back as its string;
// any other string is written as a string and reads back too.
func TestWords_RoundTrip(t *testing.T) {
	for _, s := range append(words[1:],
		"", "x", "warning.dispatched2", "Applied", strings.Repeat("长", 40), "刷单返利 ") {
		var p packer
		p.word(s)
		if _, isWord := wordCodes[s]; isWord && len(p.b) != 1 {
			t.Errorf("word %q takes %d bytes", s, len(p.b))
		}
		u := unpacker{b: p.b}
		if got := u.word(); got != s || u.finish() != nil {
			t.Errorf("%q read back as %q (%v)", s, got, u.err)
		}
		// A string written before words (schema 17 and older) reads too.
		var old packer
		old.str(s)
		u = unpacker{b: old.b}
		if got := u.word(); got != s || u.finish() != nil {
			t.Errorf("%q as a string read back as %q (%v)", s, got, u.err)
		}
	}
	// 0 is no word, and a code past the list is one this code does not
	// know (a newer store's: the schema version keeps it off).
	for _, c := range []byte{0, byte(len(words))} {
		u := unpacker{b: []byte{c}}
		if got := u.word(); u.err == nil {
			t.Errorf("byte %d read as word %q", c, got)
		}
	}
}
