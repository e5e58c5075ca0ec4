package store_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
)

// BenchmarkCompactIndex measures index compaction of a city whose log holds
// 200,000 ops (20,000 warnings, each with about nine attempts, every one of
// which wrote an entry into five scopes): "first" is the compaction that
// finds most entries dead, "again" the daily pass that finds none, "file"
// the rewrite of the file that fieldsyncd compact does next. Set
// FIELDSYNC_BENCH_COMPACT_OPS to change the size. "upgrade" is the
// schema 4 upgrade of that store before its compaction: its latest
// entries built from the indexes.
//
//	go test -run='^$' -bench=CompactIndex -benchtime=1x ./server/store/
func BenchmarkCompactIndex(b *testing.B) {
	ops := uint64(200_000)
	if v := os.Getenv("FIELDSYNC_BENCH_COMPACT_OPS"); v != "" {
		var n uint64
		for _, c := range v {
			n = n*10 + uint64(c-'0')
		}
		ops = n
	}
	c := newBenchCity(b)
	c.growTo(b, ops)
	upgrade := benchUpgradeToLatest(b, c)
	b.Run("upgrade", func(b *testing.B) {
		for range b.N {
		}
		b.ReportMetric(float64(upgrade.Steps), "steps")
		b.ReportMetric(float64(upgrade.Took.Microseconds())/1000, "ms/upgrade")
		b.ReportMetric(0, "ns/op")
	})
	c.reopen(b, true)
	ctx := context.Background()
	// The first compaction of a store that has never had one runs once,
	// here: a second pass finds nothing to drop ("again" measures that), so
	// it cannot be repeated b.N times. Its figures are reported by "first".
	start := time.Now()
	first, err := c.Store.CompactIndex(ctx, 30*24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	b.Run("first", func(b *testing.B) {
		for range b.N {
		}
		b.ReportMetric(float64(first.Entries), "entries")
		b.ReportMetric(float64(first.Superseded), "superseded")
		b.ReportMetric(float64(first.Entries)/took.Seconds(), "entries/s")
		b.ReportMetric(float64(took.Microseconds())/1000, "ms/pass")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("again", func(b *testing.B) {
		for range b.N {
			rep, err := c.Store.CompactIndex(ctx, 30*24*time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(rep.Entries), "entries")
		}
	})
	// The file as fieldsyncd compact rewrites it afterwards.
	if err := c.Store.Close(); err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(c.Dir, store.DBFile)
	before, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("file", func(b *testing.B) {
		for range b.N {
			dst := filepath.Join(b.TempDir(), "compact.db")
			if err := storefile.Compact(src, dst); err != nil {
				b.Fatal(err)
			}
			after, err := os.Stat(dst)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(before.Size()>>20), "MiB-before")
			b.ReportMetric(float64(after.Size()>>20), "MiB-after")
		}
	})
}

// benchUpgradeToLatest makes c's store a schema-3 one again (no latest
// entries), reopens it, and returns the schema 4 upgrade that Open ran.
func benchUpgradeToLatest(b *testing.B, c *benchCity) store.Migration {
	b.Helper()
	if err := c.Store.Close(); err != nil {
		b.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(c.Dir, store.DBFile), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("latest")); err != nil {
			return err
		}
		if _, err := tx.CreateBucket([]byte("latest")); err != nil {
			return err
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, 3)
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), v)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
	c.reopen(b, false)
	ran := c.Store.Migrated()
	if len(ran) != 1 || ran[0].To != 4 {
		b.Fatalf("migrations run: %+v", ran)
	}
	return ran[0]
}
