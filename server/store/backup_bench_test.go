package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fieldsync/fieldsync/server/store/storefile"
)

// BenchmarkBackup takes a hot backup of a store grown to 100,000 log ops
// (FIELDSYNC_BENCH_BACKUP_OPS to change it) and restores it: the figures
// an operator needs to plan the nightly backup's window and a restore's.
func BenchmarkBackup(b *testing.B) {
	ops := uint64(100_000)
	if v := os.Getenv("FIELDSYNC_BENCH_BACKUP_OPS"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			b.Fatalf("FIELDSYNC_BENCH_BACKUP_OPS: %v", err)
		}
		ops = n
	}
	c := newBenchCity(b)
	c.growTo(b, ops)
	c.reopen(b, true)
	ctx := context.Background()
	var stream bytes.Buffer
	b.Run("take", func(b *testing.B) {
		for range b.N {
			stream.Reset()
			info, err := c.Store.Backup(ctx, &stream)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(info.Bytes)
		}
		b.ReportMetric(float64(stream.Len())/(1<<20), "MiB")
	})
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(int64(stream.Len()))
		for range b.N {
			if _, err := storefile.VerifyBackup(bytes.NewReader(stream.Bytes())); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("restore", func(b *testing.B) {
		b.SetBytes(int64(stream.Len()))
		for range b.N {
			dir := filepath.Join(b.TempDir(), "restored")
			if _, err := storefile.Restore(ctx, bytes.NewReader(stream.Bytes()), dir, storefile.RestoreOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
