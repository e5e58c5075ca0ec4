package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// What a lead's page carries, field by field: what a lead's pull could
// leave out. A page is read as raw MessagePack into a tree that keeps
// every value's bytes, so each field's share is exact: its key and value
// as they were sent. What leaving a field out would save on the wire is
// measured by writing the page again without it and gzipping both at the
// level the server uses for a slow link's pages (DefaultCompression; see
// server/httpapi): gzip shares are not additive, so each saving is for
// that field alone.

// node is one MessagePack value: a map (keys and vals), an array (vals),
// or anything else kept as its raw bytes.
type node struct {
	isMap, isArray bool
	keys           []string
	vals           []*node
	raw            []byte
	size           int // encoded bytes, headers included
}

// parseNode reads one value from d, which reads buf through r.
func parseNode(d *msgpack.Decoder, r *bytes.Reader, buf []byte) (*node, error) {
	start := len(buf) - r.Len()
	code, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	n := &node{}
	switch {
	case msgpcode.IsFixedMap(code) || code == msgpcode.Map16 || code == msgpcode.Map32:
		l, err := d.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		n.isMap = true
		for range l {
			k, err := d.DecodeString()
			if err != nil {
				return nil, fmt.Errorf("map key: %w", err)
			}
			v, err := parseNode(d, r, buf)
			if err != nil {
				return nil, err
			}
			n.keys, n.vals = append(n.keys, k), append(n.vals, v)
		}
	case msgpcode.IsFixedArray(code) || code == msgpcode.Array16 || code == msgpcode.Array32:
		l, err := d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		n.isArray = true
		for range l {
			v, err := parseNode(d, r, buf)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
		}
	default:
		if err := d.Skip(); err != nil {
			return nil, err
		}
		n.raw = buf[start : len(buf)-r.Len()]
	}
	n.size = len(buf) - r.Len() - start
	return n, nil
}

func parsePage(page []byte) (*node, error) {
	r := bytes.NewReader(page)
	// A bytes.Reader is read as it is, without a buffer, so its
	// position is the decoder's.
	n, err := parseNode(msgpack.NewDecoder(r), r, page)
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, errors.New("bytes after the page")
	}
	return n, nil
}

// encode writes n again, leaving out every map entry of a warning whose
// path drop names. Paths are keys joined by dots, with [] for an array's
// items: ".changes[].data.attempts[].notes".
func (n *node) encode(e *msgpack.Encoder, path string, drop func(string) bool) error {
	if path == ".changes[]" && !isWarningChange(n) {
		drop = nil // a unit's or user's name is not a warning's
	}
	switch {
	case n.isMap:
		var keep []int
		for i, k := range n.keys {
			if drop == nil || !drop(path+"."+k) {
				keep = append(keep, i)
			}
		}
		if err := e.EncodeMapLen(len(keep)); err != nil {
			return err
		}
		for _, i := range keep {
			if err := e.EncodeString(n.keys[i]); err != nil {
				return err
			}
			if err := n.vals[i].encode(e, path+"."+n.keys[i], drop); err != nil {
				return err
			}
		}
		return nil
	case n.isArray:
		if err := e.EncodeArrayLen(len(n.vals)); err != nil {
			return err
		}
		for _, v := range n.vals {
			if err := v.encode(e, path+"[]", drop); err != nil {
				return err
			}
		}
		return nil
	}
	return e.Encode(msgpack.RawMessage(n.raw))
}

func (n *node) bytes(drop func(string) bool) ([]byte, error) {
	var b bytes.Buffer
	err := n.encode(msgpack.NewEncoder(&b), "", drop)
	return b.Bytes(), err
}

func (n *node) get(key string) *node {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// strSize is the encoded size of a map key.
func strSize(s string) int {
	switch l := len(s); {
	case l < 32:
		return 1 + l
	case l < 256:
		return 2 + l
	case l < 1<<16:
		return 3 + l
	}
	return 5 + len(s)
}

// account adds each field's bytes of a page to shares, by label: a
// warning's fields by name, its attempts' fields as "attempts[].name",
// map and array headers as "(structure)", and the change envelope and
// directory records as such.
func account(page *node, shares map[string]int) (warnings, attempts int) {
	add := func(label string, n int) { shares[label] += n }
	add("(structure)", page.size-entriesSize(page))
	for i, k := range page.keys {
		v := page.vals[i]
		if k != "changes" || !v.isArray {
			add("(page: cursor, more, remaining ...)", strSize(k)+v.size)
			continue
		}
		add("(structure)", strSize(k)+v.size-sumSizes(v.vals))
		for _, ch := range v.vals {
			data := ch.get("data")
			if !isWarningChange(ch) || data == nil || !data.isMap {
				add("(directory: units and users, removes)", ch.size)
				continue
			}
			warnings++
			add("(change: kind, entity, id, version)", ch.size-strSize("data")-data.size)
			add("(structure)", strSize("data")+data.size-entriesSize(data))
			for j, f := range data.keys {
				fv := data.vals[j]
				if f != "attempts" || !fv.isArray {
					add(f, strSize(f)+fv.size)
					continue
				}
				add("attempts[] (structure)", strSize(f)+fv.size-sumSizes(fv.vals))
				for _, a := range fv.vals {
					attempts++
					add("attempts[] (structure)", a.size-entriesSize(a))
					for m, af := range a.keys {
						add("attempts[]."+af, strSize(af)+a.vals[m].size)
					}
				}
			}
		}
	}
	return warnings, attempts
}

// isWarningChange reports whether a change is a warning's, by its entity.
func isWarningChange(ch *node) bool {
	entity := ch.get("entity")
	return ch.isMap && entity != nil && bytes.HasSuffix(entity.raw, []byte("warning"))
}

func sumSizes(ns []*node) int {
	t := 0
	for _, n := range ns {
		t += n.size
	}
	return t
}

// entriesSize is the bytes of a map's keys and values, without its header.
func entriesSize(n *node) int {
	t := 0
	for i, k := range n.keys {
		t += strSize(k) + n.vals[i].size
	}
	return t
}

func gzipSize(b []byte) int { return gzipSizeAt(b, gzip.DefaultCompression) }

func gzipSizeAt(b []byte, level int) int {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, level)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Len()
}

// pageFields reports the largest page's bytes by field and what leaving
// out each field would save on the wire.
func pageFields(pages [][]byte) ([]string, error) {
	if len(pages) == 0 {
		return nil, errors.New("no pull answer was kept")
	}
	largest := slices.MaxFunc(pages, func(a, b []byte) int { return len(a) - len(b) })
	root, err := parsePage(largest)
	if err != nil {
		return nil, fmt.Errorf("decode a page: %w", err)
	}
	again, err := root.bytes(nil)
	if err != nil || !bytes.Equal(again, largest) {
		return nil, fmt.Errorf("a page written again differs from what came (%d bytes against %d): %v", len(again), len(largest), err)
	}
	shares := map[string]int{}
	warnings, attempts := account(root, shares)
	total := len(largest)
	gz := gzipSize(largest)
	lines := []string{fmt.Sprintf("largest page: %d warnings with %d attempts, %s of MessagePack, %s gzipped at DefaultCompression (%.0f B per warning)",
		warnings, attempts, kb(int64(total)), kb(int64(gz)), float64(gz)/float64(max(1, warnings)))}
	lines = append(lines, fmt.Sprintf("gzipped at other levels: %s at BestSpeed (a fast link's pages), %s at BestCompression",
		kb(int64(gzipSizeAt(largest, gzip.BestSpeed))), kb(int64(gzipSizeAt(largest, gzip.BestCompression)))))
	lines = append(lines, fmt.Sprintf("  %-40s %10s %7s %16s", "field (key and value)", "MsgPack", "share", "gzip saved if cut"))
	labels := slices.Collect(maps.Keys(shares))
	slices.SortFunc(labels, func(a, b string) int { return shares[b] - shares[a] })
	sum := 0
	for _, l := range labels {
		sum += shares[l]
		saved := "-"
		if path := fieldPath(l); path != "" {
			cut, err := root.bytes(func(p string) bool { return p == path })
			if err != nil {
				return lines, err
			}
			s := gz - gzipSize(cut)
			saved = fmt.Sprintf("%6d B %5.1f%%", s, 100*float64(s)/float64(gz))
		}
		lines = append(lines, fmt.Sprintf("  %-40s %8d B %6.1f%% %16s", l, shares[l], 100*float64(shares[l])/float64(total), saved))
	}
	if sum != total {
		lines = append(lines, fmt.Sprintf("  (the shares add up to %d bytes, not %d: the accounting is off)", sum, total))
	}
	// What a lead might do without at once: the detail of each attempt
	// beyond its outcome, and the bookkeeping of photos and assignees.
	detail := []string{"attempts[].notes", "attempts[].location", "attempts[].device_id", "attempts[].photos",
		"attempts[].received_at", "attempts[].id", "attempts[].version", "missing_photos", "past_assignees"}
	cut, err := root.bytes(func(p string) bool {
		return slices.ContainsFunc(detail, func(l string) bool { return p == fieldPath(l) })
	})
	if err != nil {
		return lines, err
	}
	lines = append(lines, fmt.Sprintf("all of %s together: %s of MessagePack less, %s less gzipped (%.0f%% of the page on the wire)",
		strings.Join(detail, ", "), kb(int64(total-len(cut))), kb(int64(gz-gzipSize(cut))), 100*float64(gz-gzipSize(cut))/float64(gz)))
	return lines, nil
}

// fieldPath is the path of a warning's or an attempt's field label, ""
// for the other labels.
func fieldPath(label string) string {
	if strings.HasPrefix(label, "(") || strings.HasSuffix(label, "(structure)") {
		return ""
	}
	return ".changes[].data." + label
}
