package store

import "github.com/fieldsync/fieldsync/syncproto"

// The compact form of attempt records (schema 13 on). Nearly every op a
// cadre pushes adds an attempt, and each is a record of its own in bucket
// warnings (attempts.go); in the older form, the MessagePack map of the
// wire, its keys, its three ids as 36 characters each and a photo's hash
// as 64 took about twice the bytes of what the attempt says. The compact
// form is the log's (logcodec.go): compactTag, then one MessagePack array
// of the fields in a fixed order, trailing empty fields left out, ids
// that are canonical UUIDs as 16 bytes, a photo's hash as its raw bytes,
// and from schema 18 the method and the outcome as words (words.go):
//
//	attempt  [id, by, device_id, method, reached, outcome, loss_fen, notes, at, received_at, version, location, photos]
//	location [lat, lng, accuracy]
//
// Version comes before the place and the photos, which an attempt often
// lacks, so that they are the trailing fields left out. Records of the
// older form stay as they are and are read beside the compact ones.

// attemptFields is the length of the attempt array.
const attemptFields = 13

// encodeAttempt is a in the compact form.
func encodeAttempt(a *syncproto.Attempt) []byte {
	return encodeCompact(func(p *packer) { p.attempt(a) })
}

// DecodeAttempt reads an attempt record of bucket warnings, in either
// form, into a.
func DecodeAttempt(data []byte, a *syncproto.Attempt) error {
	return decodeEither(data, a, "attempt", (*unpacker).attempt)
}

func (p *packer) attempt(at *syncproto.Attempt) {
	a := p.array()
	a.id(at.ID)
	a.id(at.By)
	a.id(at.DeviceID)
	a.word(at.Method)
	a.bool(at.Reached)
	a.word(at.Outcome)
	a.int(at.LossFen)
	a.str(at.Notes)
	a.time(at.At)
	a.time(at.ReceivedAt)
	a.uint(at.Version)
	if a.present(at.Location != nil) {
		p.location(at.Location)
	}
	// No photos and an empty list are alike, as in the older form, which
	// leaves out both: an attempt reads back the same from either.
	if a.present(len(at.Photos) > 0) {
		p.arrayLen(len(at.Photos))
		for _, h := range at.Photos {
			p.hex(h)
		}
	}
	a.close()
}

func (u *unpacker) attempt(a *syncproto.Attempt) {
	l := u.list(attemptFields)
	a.ID = l.id()
	a.By = l.id()
	a.DeviceID = l.id()
	a.Method = l.word()
	a.Reached = l.bool()
	a.Outcome = l.word()
	a.LossFen = l.int()
	a.Notes = l.str()
	a.At = l.time()
	a.ReceivedAt = l.time()
	a.Version = l.uint()
	if l.next() {
		a.Location = u.location()
	}
	if l.next() {
		if n := u.arrayLen(); n > 0 {
			a.Photos = make([]string, n)
			for i := range a.Photos {
				a.Photos[i] = u.hex()
			}
		}
	}
}
