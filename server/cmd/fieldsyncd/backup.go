package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldsync/fieldsync/internal/durable"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
)

// backupIdle is how long a backup download may stand still before it is
// given up.
const backupIdle = 2 * time.Minute

// runBackup downloads a hot backup of a running server into a file. The
// file appears under its name only once the stream was read to its
// trailer, every checksum matched, and it is on disk.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := addAdminFlags(fs)
	out := fs.String("out", "", "the backup file to write (required); it is written as FILE.tmp, verified, then renamed")
	if err := parseOnly(fs, args); err != nil {
		return err
	}
	if err := admin.validate(); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	start := time.Now()
	c, err := admin.login(ctx, "fieldsyncd-backup")
	if err != nil {
		return err
	}
	info, size, err := downloadBackup(ctx, c, *out)
	if lerr := c.finish(ctx); lerr != nil {
		fmt.Fprintf(stderr, "fieldsyncd: backup: sign out: %v\n", lerr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup written to %s: %d bytes, last seq %d, %d warnings, %d photos, taken at %s, in %s\n",
		*out, size, info.LastSeq, info.Warnings, info.Blobs, info.TakenAt.Format(time.RFC3339), time.Since(start).Round(time.Millisecond))
	return nil
}

// downloadBackup streams the backup into out+".tmp", verifying it on the
// way, then fsyncs and renames it to out.
func downloadBackup(ctx context.Context, c *adminClient, out string) (*store.BackupInfo, int64, error) {
	body, err := c.download(ctx, "/v1/admin/backup", "application/x-tar", backupIdle)
	if err != nil {
		return nil, 0, fmt.Errorf("backup: %w", err)
	}
	defer body.Close()
	tmp := out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("backup: %w", err)
	}
	keep := false
	defer func() {
		f.Close()
		if !keep {
			os.Remove(tmp)
		}
	}()
	info, err := storefile.VerifyBackup(io.TeeReader(body, f))
	if err != nil {
		return nil, 0, fmt.Errorf("backup: the download is not a whole backup, nothing was kept: %w", err)
	}
	// Whatever follows the end of the archive (nothing, from fieldsyncd)
	// is kept, so the file is the stream as it came.
	if _, err := io.Copy(f, body); err != nil {
		return nil, 0, fmt.Errorf("backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, 0, fmt.Errorf("backup: sync %s: %w", tmp, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, 0, fmt.Errorf("backup: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, 0, fmt.Errorf("backup: %w", err)
	}
	keep = true
	if err := durable.Sync(filepath.Dir(out)); err != nil {
		return nil, 0, fmt.Errorf("backup: %w", err)
	}
	return info, fi.Size(), nil
}

// runRestore restores a backup file into a store directory, for a stopped
// server.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the backup file (required)")
	dataDir := fs.String("data", "", "the store directory to restore into (required; the server must be stopped)")
	replace := fs.Bool("replace", false, "replace what --data holds; the old content is moved aside to DIR.before-restore-TIME, not deleted")
	if err := parseOnly(fs, args, "from", "data"); err != nil {
		return err
	}
	f, err := os.Open(*from)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := storefile.Restore(ctx, f, *dataDir, storefile.RestoreOptions{Replace: *replace})
	if errors.Is(err, storefile.ErrStoreExists) {
		return fmt.Errorf("restore of %s: %w; with --replace, the old one is moved aside", *from, err)
	}
	if err != nil {
		return fmt.Errorf("restore of %s: %w", *from, err)
	}
	b := info.Backup
	fmt.Fprintf(stdout, "restored %s into %s: backup taken at %s, last seq %d, %d warnings, %d units, %d users, %d devices, %d photos\n",
		*from, *dataDir, b.TakenAt.Format(time.RFC3339), b.LastSeq, b.Warnings, b.Units, b.Users, b.Devices, b.Blobs)
	if info.MovedAside != "" {
		fmt.Fprintf(stdout, "the previous content of %s is kept in %s\n", *dataDir, info.MovedAside)
	}
	fmt.Fprintf(stdout, "check: %d log entries, %d warnings, %d problems\n", info.Check.LogEntries, info.Check.Warnings, len(info.Check.Problems))
	fmt.Fprintf(stdout, "new incarnation %s: every device resets at its next sync; it pushes the ops it still holds that this backup lacks, then pulls its scope again\n", info.Incarnation)
	return nil
}
