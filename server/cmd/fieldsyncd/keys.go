package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/store"
)

const keysUsage = `usage: fieldsyncd keys <command> [flags]

commands:
  rotate  make a new signing key active: in a running server with --url
          (an admin of the root unit signs in), or in a stopped server's
          store with --data
  list    list a stopped store's signing keys
Run "fieldsyncd keys <command> -h" for the flags of each.
`

// runKeys manages the signing keys of access tokens in a stopped store.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return commands{
		usage: keysUsage,
		of:    "keys",
		run: map[string]command{
			"rotate": runKeysRotate,
			"list":   withoutContext(runKeysList),
		},
	}.dispatch(ctx, args, stdout, stderr)
}

func runKeysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "store directory of a stopped server (or give --url)")
	accessTTL := fs.Duration("access-ttl", auth.DefaultAccessTTL, "with --data: the server's access token lifetime; keys retired longer ago than this plus an hour are deleted")
	admin := addAdminFlags(fs)
	if err := parseOnly(fs, args); err != nil {
		return err
	}
	var rot *app.KeyRotation
	switch {
	case *admin.url != "" && *dataDir != "":
		return errors.New("give --url for a running server or --data for a stopped one, not both")
	case *admin.url != "":
		var err error
		if rot, err = rotateRemote(ctx, admin); err != nil {
			return err
		}
	default:
		if err := refuseNode(*dataDir, "rotate the key of the running cluster with --url"); err != nil {
			return err
		}
		st, err := openStopped(*dataDir)
		if err != nil {
			return err
		}
		defer st.Close()
		if rot, err = app.RotateKeys(ctx, st, *accessTTL); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "new signing key %s is active; tokens signed before keep working until they expire\n", rot.KID)
	fmt.Fprintf(stdout, "verifying: %s\n", strings.Join(rot.Verifying, " "))
	if len(rot.Removed) > 0 {
		fmt.Fprintf(stdout, "removed: %s\n", strings.Join(rot.Removed, " "))
	}
	return nil
}

// rotateRemote rotates a running server's key through
// POST /v1/admin/keys/rotate, signed in as an administrator of the root unit.
func rotateRemote(ctx context.Context, admin adminFlags) (*app.KeyRotation, error) {
	if err := admin.validate(); err != nil {
		return nil, err
	}
	c, err := admin.login(ctx, "fieldsyncd-keys")
	if err != nil {
		return nil, err
	}
	defer c.finish(ctx)
	var rot app.KeyRotation
	if err := c.Do(ctx, http.MethodPost, "/v1/admin/keys/rotate", nil, &rot); err != nil {
		return nil, fmt.Errorf("rotate: %w", err)
	}
	return &rot, nil
}

func runKeysList(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "store directory (required; the server must be stopped)")
	if err := parseOnly(fs, args); err != nil {
		return err
	}
	st, err := openStopped(*dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, active, err := st.ListSigningKeys()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tCREATED\tRETIRED\tACTIVE")
	for _, k := range keys {
		retired, isActive := "-", "no"
		if !k.Retired.IsZero() {
			retired = k.Retired.UTC().Format(time.RFC3339)
		}
		if k.ID == active {
			isActive = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Created.UTC().Format(time.RFC3339), retired, isActive)
	}
	return tw.Flush()
}

// openStopped opens a keys command's store, which a running server would
// hold locked.
func openStopped(dataDir string) (*store.Store, error) {
	if dataDir == "" {
		return nil, errors.New("--data is required")
	}
	st, err := store.Open(dataDir, store.Options{NoUpgrade: true})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: a running server holds the store; stop it first, or rotate the running server with --url", err)
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}
