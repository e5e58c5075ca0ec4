package syncproto

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// DecodeMsgpack decodes data by entity into *Warning, *Unit or *DirectoryUser.
func (c *Change) DecodeMsgpack(d *msgpack.Decoder) error { return c.decodeFields(libReader{d}) }

// decodeFields reads a change. Its data is read as a warning where it
// lies when the entity comes first (as every encoder writes it), and
// otherwise kept encoded until the entity is known.
func (c *Change) decodeFields(r msgReader) error {
	*c = Change{}
	var (
		raw     []byte
		warning *Warning
		inPlace bool
	)
	err := readMap(r, func(k string) (err error) {
		switch k {
		case "kind":
			c.Kind, err = r.str()
		case "entity":
			c.Entity, err = r.str()
		case "id":
			c.ID, err = r.str()
		case "version":
			c.Version, err = r.uint()
		case "data":
			raw, warning, inPlace = nil, nil, c.Entity == EntityWarning
			if inPlace {
				warning, err = readWarning(r)
			} else {
				raw, err = r.raw()
			}
		default:
			err = r.skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	if inPlace {
		if c.Entity != EntityWarning {
			return fmt.Errorf("msgpack: a change's data read as a warning, then its entity is %q", c.Entity)
		}
		if warning != nil {
			c.Data = warning
		}
		return nil
	}
	if len(raw) == 0 || raw[0] == 0xc0 {
		return nil
	}
	switch target := newEntity(c.Entity).(type) {
	case nil:
		return nil
	case *Warning:
		err = target.decodeFields(r.sub(raw))
		c.Data = target
	default:
		// Units and users are rare (a lead's directory) and decoded by
		// reflection.
		d := msgpack.NewDecoder(bytes.NewReader(raw))
		d.SetCustomStructTag("json")
		err = d.Decode(target)
		c.Data = target
	}
	return err
}

func readWarning(r msgReader) (*Warning, error) {
	if null, err := r.isNil(); null || err != nil {
		return nil, err
	}
	w := &Warning{}
	return w, w.decodeFields(r)
}

// The envelopes of pull, both ways, and of a push's answer are decoded by
// the library's reflection from their struct tags, and by a byteReader
// from the field lists below; the every-field test holds one against the
// other. (A push has a decoder of its own, limits.go.) Each
// reads a field as the library reads its type: a string with str, an int
// with int, a uint64 as the strict decoder registered in codec.go.

// readStruct calls field for each key of a struct's map.
func readStruct(r *byteReader, field func(key string) error) error {
	return readFields(r, r.structLen, field)
}

func (p *PushResponse) decodeEnvelope(r *byteReader) error {
	*p = PushResponse{}
	return readStruct(r, func(k string) (err error) {
		switch k {
		case "results":
			p.Results, err = readList[Result](r)
		case "last_client_seq":
			p.LastClientSeq, err = r.uint()
		case "server_seq":
			p.ServerSeq, err = r.uint()
		case "received_at":
			p.ReceivedAt, err = r.extTime()
		default:
			err = r.skip()
		}
		return err
	})
}

// DecodeMsgpack decodes a pull, refusing more than MaxPullLimit have
// entries before it allocates them (a megabyte of empty entries would
// otherwise cost some 40 MB of Have structs).
func (p *PullRequest) DecodeMsgpack(d *msgpack.Decoder) error { return p.decodeFields(libReader{d}) }

// decodeFields reads a pull's fields, in any key order; a second have
// list replaces the first.
func (p *PullRequest) decodeFields(r msgReader) error {
	*p = PullRequest{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "device_id":
			p.DeviceID, err = r.str()
		case "cursor":
			p.Cursor, err = r.str()
		case "limit":
			p.Limit, err = readInt(r)
		case "max_bytes":
			p.MaxBytes, err = readInt(r)
		case "wait":
			p.Wait, err = readInt(r)
		case "detail":
			p.Detail, err = r.str()
		case "have":
			p.Have, err = readListMax[Have](r, "have", MaxPullLimit)
		default:
			err = r.skip()
		}
		return err
	})
}

func (p *PullResponse) decodeEnvelope(r *byteReader) error {
	*p = PullResponse{}
	return readStruct(r, func(k string) (err error) {
		switch k {
		case "changes":
			p.Changes, err = readList[Change](r)
		case "cursor":
			p.Cursor, err = r.str()
		case "more":
			p.More, err = r.bool()
		case "reset":
			p.Reset, err = r.bool()
		case "remaining":
			p.Remaining, err = readInt(r)
		case "last_client_seq":
			p.LastClientSeq, err = r.uint()
		case "kept":
			// The library leaves a []string as it is for a nil.
			var kept []string
			if kept, err = readStrings(r); kept != nil {
				p.Kept = kept
			}
		default:
			err = r.skip()
		}
		return err
	})
}

func (h *Have) decodeFields(r msgReader) error {
	*h = Have{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "id":
			h.ID, err = r.str()
		case "version":
			h.Version, err = r.uint()
		case "hash":
			h.Hash, err = r.str()
		default:
			err = r.skip()
		}
		return err
	})
}

// readInt reads an int field as the library does: any integer, cut to
// int's size.
func readInt(r msgReader) (int, error) {
	n, err := r.int()
	return int(n), err
}
