package store

import (
	"context"
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
	return s.write(ctx, func(tx *bolt.Tx) error {
		devices := tx.Bucket(schema.BucketDevices)
		for id, at := range seen {
			var d Device
			found, err := get(devices, []byte(id), &d)
			if err != nil {
				return err
			}
			if !found || !at.After(d.LastSeen) {
				continue
			}
			d.LastSeen = at.UTC()
			if err := put(devices, []byte(id), &d); err != nil {
				return err
			}
		}
		return nil
	})
}

// Device returns a device by id.
func (s *Store) Device(id string) (*Device, bool, error) {
	d, err := view(s, func(tx *bolt.Tx) (*Device, error) {
		return load[Device](tx.Bucket(schema.BucketDevices), []byte(id))
	})
	return d, d != nil, err
}
