package storefile

import (
	"fmt"
	"os"
	"time"

	"github.com/fieldsync/fieldsync/internal/durable"
	bolt "go.etcd.io/bbolt"
)

// compactTxMax bounds the size of one transaction of Compact.
const compactTxMax = 64 << 20

// Compact writes a compacted copy of the bbolt file src to dst, a path
// that must not exist: every bucket and value rewritten into full pages,
// with none of the free pages src gathered as it grew and shrank. The copy
// is fsynced before Compact returns. src must not be open elsewhere
// (the server stopped).
func Compact(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("compact: %s already exists", dst)
	}
	from, err := bolt.Open(src, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("open %s (is fieldsyncd still running?): %w", src, err)
	}
	defer from.Close()
	// No fsync per transaction: nothing depends on the copy until the
	// Sync below, and a crash before it leaves only a temporary file.
	to, err := bolt.Open(dst, 0o600, &bolt.Options{NoSync: true, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	if err := bolt.Compact(to, from, compactTxMax); err != nil {
		to.Close()
		return fmt.Errorf("compact %s: %w", src, err)
	}
	if err := to.Sync(); err != nil {
		to.Close()
		return fmt.Errorf("sync %s: %w", dst, err)
	}
	if err := to.Close(); err != nil {
		return fmt.Errorf("close %s: %w", dst, err)
	}
	return durable.Sync(dst)
}
