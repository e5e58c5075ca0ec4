package store

import "fmt"

// Words (schema 18 on). The compact values repeat a few dozen strings in
// nearly every record: a log entry's type ("dissuasion.recorded", 20
// bytes), a push result's status, a warning's status, risk and fraud type,
// an attempt's method and outcome. A compact value writes a string of the
// list below as its position, a positive fixint (one byte, 0x01 to
// 0x7f), where any other string is written as a string; a reader takes
// either. A MessagePack string never starts with a byte below 0x80, so
// the two cannot be confused, and a value written before schema 18 holds
// no words and reads as it did.
//
// The list is part of the store's layout: a word keeps its position for
// good. Append new words at the end (up to position 127); never reorder,
// change or remove one. The strings are written out here, not taken from
// the protocol's constants, so that the layout cannot move with the code.
var words = [...]string{
	0: "", // no word: a 0 is refused

	// Log entry types: the protocol's op types and the server's own.
	1:  "warning.dispatched",
	2:  "warning.assigned",
	3:  "dissuasion.recorded",
	4:  "warning.escalated",
	5:  "warning.reviewed",
	6:  "warning.created",
	7:  "escalation.answered",
	8:  "unit.upserted",
	9:  "user.upserted",
	10: "photo.received",
	11: "warning.archived",
	12: "warning.redacted",

	// Push result statuses.
	13: "applied",
	14: "duplicate",
	15: "rejected",

	// Warning statuses.
	16: "new",
	17: "dispatched",
	18: "assigned",
	19: "in_progress",
	20: "resolved",
	21: "closed",

	// Risks.
	22: "high",
	23: "medium",
	24: "low",

	// Dissuasion methods.
	25: "visit",
	26: "phone",
	27: "video",
	28: "other",

	// Dissuasion outcomes.
	29: "dissuaded",
	30: "already_defrauded",
	31: "not_target",
	32: "unreachable",
	33: "refused",

	// Conflict flag codes.
	34: "stale_assignee",
	35: "after_close",
	36: "conflicting_outcomes",
	37: "stale_review",
	38: "future_time",

	// Review decisions.
	39: "approve",
	40: "return",

	// Error codes a rejected op's result carries.
	41: "invalid_request",
	42: "unauthorized",
	43: "forbidden",
	44: "not_found",
	45: "payload_too_large",
	46: "out_of_order",
	47: "invalid_state",
	48: "seq_reused",
	49: "warning_full",
	50: "photo_quota_exceeded",
	51: "rate_limited",
	52: "internal",

	// Fraud types as the Ministry of Public Security's reports name them,
	// commonest first (the national platform's feed carries them as text).
	53: "刷单返利",
	54: "虚假投资理财",
	55: "虚假贷款",
	56: "冒充客服",
	57: "冒充公检法",
	58: "虚假征信",
	59: "冒充熟人/领导",
	60: "网络游戏虚假交易",
	61: "婚恋交友",
}

// wordCodes is each word's position in words.
var wordCodes = func() map[string]byte {
	codes := make(map[string]byte, len(words))
	for i, w := range words {
		if i == 0 {
			continue
		}
		if _, dup := codes[w]; dup || w == "" || i > 0x7f {
			panic(fmt.Sprintf("store: word %d %q is empty, repeated or past 127", i, w))
		}
		codes[w] = byte(i)
	}
	return codes
}()

// word writes s as its position in words, or as a string when it is not
// one of them.
func (p *packer) word(s string) {
	if c, ok := wordCodes[s]; ok {
		p.b = append(p.b, c)
		return
	}
	p.str(s)
}

// word reads what packer.word wrote. A word returns the list's own string,
// so reading one allocates nothing.
func (u *unpacker) word() string {
	if len(u.b) == 0 || u.b[0] >= 0x80 {
		return u.str()
	}
	c := u.next()
	if c == 0 || int(c) >= len(words) {
		u.fail("word %d, which this code does not know", c)
		return ""
	}
	return words[c]
}

func (f *fields) word(s string) { f.settle(); f.p.word(s); f.mark(s == "") }

func (l *fieldList) word() string {
	if !l.next() {
		return ""
	}
	return l.u.word()
}
