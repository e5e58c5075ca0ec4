package store

import (
	"context"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
)

// TouchDevices records when devices were last seen syncing, by device id. A
// push sets LastSeen in its own transaction; pulls are read-only, so the app
// gathers their sightings in memory and hands them here now and then, in
// one write. A time older than the one stored is ignored, and so is an
// unknown device.
func (s *Store) TouchDevices(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	_, err := s.write(ctx, &touchCmd{Seen: seen})
	return err
}

// touchCmd records when devices were last seen.
type touchCmd struct {
	Seen map[string]time.Time `json:"seen"`
}

func (*touchCmd) kind() cmdKind { return cmdTouchDevices }

func (c *touchCmd) apply(_ *Store, tx *bolt.Tx) (any, error) {
	devices := tx.Bucket(schema.BucketDevices)
	// In key order: the same writes in the same order on every node.
	ids := slices.Sorted(maps.Keys(c.Seen))
	for _, id := range ids {
		at := c.Seen[id]
		var d Device
		found, err := get(devices, []byte(id), &d)
		if err != nil {
			return nil, err
		}
		if !found || !at.After(d.LastSeen) {
			continue
		}
		d.LastSeen = at.UTC()
		if err := put(devices, []byte(id), &d); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// Device returns a device by id.
func (s *Store) Device(id string) (*Device, bool, error) {
	d, err := view(s, func(tx *bolt.Tx) (*Device, error) {
		return load[Device](tx.Bucket(schema.BucketDevices), []byte(id))
	})
	return d, d != nil, err
}
