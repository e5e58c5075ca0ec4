package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/fieldsync/fieldsync/internal/durable"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
)

// logMigrations says which schema upgrades opening the store ran.
func logMigrations(logger *slog.Logger, st *store.Store) {
	for _, m := range st.Migrated() {
		logger.Info("store schema upgraded", "from", m.From, "to", m.To, "migration", m.Name, "steps", m.Steps, "took", m.Took)
	}
}

// runCompact compacts a stopped store: first the scope indexes (as the
// running server does daily), then the file itself, rewritten by bbolt into
// a new file that replaces the old one once it has passed the check. The
// old file (as it was before the rewrite, so after the index compaction and
// any schema upgrade the opening ran) stays beside it as fieldsync.db.bak
// unless --remove-old.
func runCompact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "store directory (required; the server must be stopped)")
	horizon := fs.Duration("tombstone-horizon", store.DefaultTombstoneHorizon, "drop index removes older than this; a device whose scope lost one it had not read starts over (at least 24h)")
	removeOld := fs.Bool("remove-old", false, "delete the old file instead of keeping it as "+store.DBFile+".bak")
	if err := parseOnly(fs, args, "data"); err != nil {
		return err
	}
	if *horizon < store.MinTombstoneHorizon {
		return fmt.Errorf("--tombstone-horizon must be at least %s", store.MinTombstoneHorizon)
	}
	if err := refuseNode(*dataDir, "each node compacts its indexes itself, the leader deciding (a node's bbolt file is not compacted offline yet)"); err != nil {
		return err
	}
	path := filepath.Join(*dataDir, store.DBFile)
	before, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("no store at %s: %w", *dataDir, err)
	}

	st, err := store.Open(*dataDir, store.Options{})
	if err != nil {
		return err
	}
	for _, m := range st.Migrated() {
		fmt.Fprintf(stdout, "upgraded the store from schema %d to %d: %s\n", m.From, m.To, m.Name)
	}
	rep, err := st.CompactIndex(ctx, *horizon)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "index: %d scopes, %d entries read, %d superseded entries and %d old removes dropped\n",
		rep.Scopes, rep.Entries, rep.Superseded, rep.Tombstones)
	if rep.ScopesMoved > 0 {
		fmt.Fprintf(stdout, "removes dropped from %d scopes: their devices whose cursor is below the newest one dropped start over at their next pull\n", rep.ScopesMoved)
	}

	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := storefile.Compact(path, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	check, err := storefile.CheckFile(tmp)
	if err == nil && len(check.Problems) > 0 {
		err = fmt.Errorf("the compacted copy has %d problems, first: %s", len(check.Problems), check.Problems[0])
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w; the store is unchanged", err)
	}
	bak := path + ".bak"
	if *removeOld {
		if err := os.Remove(path); err != nil {
			return err
		}
	} else if err := os.Rename(path, bak); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("put the compacted file in place (the old one is %s): %w", bak, err)
	}
	if err := durable.Sync(*dataDir); err != nil {
		return err
	}
	after, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "file: %d bytes before, %d after (%d log entries, %d warnings, check clean)\n", before.Size(), after.Size(), check.LogEntries, check.Warnings)
	if !*removeOld {
		fmt.Fprintf(stdout, "the old file is %s; delete it once the server runs well on the new one\n", bak)
	}
	return nil
}
