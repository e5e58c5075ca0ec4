package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/cluster"
	"github.com/fieldsync/fieldsync/server/store"
)

// `fieldsyncd cluster ...`: the operator's commands on a running
// cluster. They reach a node's cluster port with the cluster secret
// (server/cluster/control.go), not the HTTP API with an admin's
// password: `init` makes the first admin, and the others manage raft,
// whose port is where the secret is proven. Run them on a node's machine
// or one of the cluster's network, which alone reaches the cluster ports.

const clusterUsage = `usage: fieldsyncd cluster <command> [flags]

commands:
  init     make a new cluster's root unit and admin, through the raft log
  status   every node's role, term, commit and applied index, lag
  add      add a node (started with an empty data directory and no --peers)
  remove   take a node out of the cluster
  restore  make a new cluster's state a backup's (a single server's, or a
           lost cluster's): --from BACKUP.tar [--new-incarnation] [--force]

Each reaches a node's cluster port (--node HOST:PORT, its --raft-addr)
with --cluster-secret-file; add, remove and restore go on to the leader.
`

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return commands{
		usage: clusterUsage,
		of:    "cluster",
		run: map[string]command{
			"init":    runClusterInit,
			"status":  runClusterStatus,
			"add":     runClusterAdd,
			"remove":  runClusterRemove,
			"restore": runClusterRestore,
		},
	}.dispatch(ctx, args, stdout, stderr)
}

// clusterFlags reach one node's cluster port.
type clusterFlags struct {
	node, secretFile *string
}

func addClusterFlags(fs *flag.FlagSet) clusterFlags {
	return clusterFlags{
		node:       fs.String("node", "", "HOST:PORT of a node's cluster port (its --raft-addr) (required)"),
		secretFile: fs.String("cluster-secret-file", "", "file holding the cluster secret (required)"),
	}
}

// send sends req to the node and returns its answer.
func (f clusterFlags) send(ctx context.Context, req cluster.ControlRequest) (*cluster.ControlResponse, error) {
	secret, err := cluster.LoadSecret(*f.secretFile)
	if err != nil {
		return nil, fmt.Errorf("--cluster-secret-file: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return cluster.Control(ctx, *f.node, secret, req)
}

func runClusterInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cluster init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClusterFlags(fs)
	pwFile := fs.String("admin-password-file", "", "file holding the admin password; without it a random one is printed once; with it an initialized cluster's admin password is set again")
	var root rootUnit
	root.code, root.name = "4110", "Xuchang"
	fs.Var(&root, "root-unit", "root unit as `CODE NAME` (a 4-digit city code and its name)")
	if err := parseOnly(fs, joinRootUnit(args), "node", "cluster-secret-file"); err != nil {
		return err
	}
	if root.name == "" {
		return errors.New("--root-unit needs a code and a name")
	}
	in := cluster.InitRequest{RootCode: root.code, RootName: root.name}
	printed := false
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return fmt.Errorf("read admin password: %w", err)
		}
		in.AdminPassword, in.Reset = strings.TrimRight(string(b), "\r\n"), true
	} else {
		in.AdminPassword, printed = randomPassword(), true
	}
	if _, err := cf.send(ctx, cluster.ControlRequest{Op: cluster.OpInit, Init: &in}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "initialized the cluster of %s with root unit %s %s\n", *cf.node, root.code, root.name)
	if printed {
		fmt.Fprintf(stdout, "admin password (shown once): %s\n", in.AdminPassword)
	}
	return nil
}

// clusterInit is what a node runs for `fieldsyncd cluster init`: the
// root unit and admin of app.Bootstrap, written through the log like
// every write, so every node gets them. An initialized cluster is
// refused unless the password was given (to set it again), as `init`
// refuses an initialized store.
func clusterInit(st *store.Store) cluster.InitFunc {
	return func(ctx context.Context, in cluster.InitRequest) error {
		admin, err := st.UserByUsername(app.AdminUsername)
		if err != nil {
			return err
		}
		if admin != nil && !in.Reset {
			return errors.New("this cluster is already initialized; give --admin-password-file to reset the admin password")
		}
		return app.Bootstrap(ctx, st, in.RootCode, in.RootName, in.AdminPassword)
	}
}

func runClusterStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cluster status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClusterFlags(fs)
	if err := parseOnly(fs, args, "node", "cluster-secret-file"); err != nil {
		return err
	}
	first, err := cf.send(ctx, cluster.ControlRequest{Op: cluster.OpStatus})
	if err != nil {
		return err
	}
	// Every member's own view: a node cut off from the others says so
	// only itself.
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSTATE\tLEADER\tQUORUM\tTERM\tCOMMIT\tAPPLIED\tLAG")
	row := func(s cluster.Status) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%d\t%d\t%d\t%d\n", s.ID, s.Addr, s.State, s.LeaderID, s.Quorum, s.Term, s.CommitIndex, s.AppliedIndex, s.Lag)
	}
	unreachable := 0
	members := first.Status.Servers
	if len(members) == 0 {
		members = []cluster.Peer{{ID: first.Status.ID, Addr: first.Status.Addr}}
	}
	for _, p := range members {
		if p.ID == first.Status.ID {
			row(first.Status)
			continue
		}
		nf := cf
		nf.node = &p.Addr
		resp, err := nf.send(ctx, cluster.ControlRequest{Op: cluster.OpStatus})
		if err != nil {
			unreachable++
			fmt.Fprintf(tw, "%s\t%s\tunreachable\t\t\t\t\t\t\n", p.ID, p.Addr)
			fmt.Fprintf(stderr, "%s: %v\n", p.ID, err)
			continue
		}
		row(resp.Status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if unreachable > 0 {
		return fmt.Errorf("%d of %d nodes did not answer", unreachable, len(members))
	}
	return nil
}

func runClusterAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cluster add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClusterFlags(fs)
	id := fs.String("id", "", "the new node's --node-id (required)")
	addr := fs.String("addr", "", "the new node's --raft-addr (required)")
	if err := parseOnly(fs, args, "node", "cluster-secret-file", "id", "addr"); err != nil {
		return err
	}
	if _, err := hostPort(*addr); err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	resp, err := cf.send(ctx, cluster.ControlRequest{Op: cluster.OpAdd, Peer: cluster.Peer{ID: *id, Addr: *addr}})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added %s (%s) to the cluster led by %s\n", *id, *addr, resp.Status.ID)
	return nil
}

func runClusterRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cluster remove", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClusterFlags(fs)
	id := fs.String("id", "", "the --node-id of the node to remove (required)")
	if err := parseOnly(fs, args, "node", "cluster-secret-file", "id"); err != nil {
		return err
	}
	resp, err := cf.send(ctx, cluster.ControlRequest{Op: cluster.OpRemove, Peer: cluster.Peer{ID: *id}})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed %s from the cluster led by %s\n", *id, resp.Status.ID)
	return nil
}

// runClusterRestore streams a backup to the cluster's leader, which
// checks it and restores it through raft into every node
// (docs/CLUSTER.md): a single server's store becomes the cluster's, its
// phones going on without a reset.
func runClusterRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cluster restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClusterFlags(fs)
	from := fs.String("from", "", "the backup file, as `fieldsyncd backup` wrote it (required)")
	force := fs.Bool("force", false, "restore even over a cluster that holds data (warnings, phones, photos, units or users beyond `cluster init`'s); it is replaced")
	newInc := fs.Bool("new-incarnation", false, "give the restored state a new incarnation, so every phone resets at its next sync: for a backup older than what phones have synced (a lost cluster's); leave it out when moving a single server stopped right after its backup")
	if err := parseOnly(fs, args, "node", "cluster-secret-file", "from"); err != nil {
		return err
	}
	secret, err := cluster.LoadSecret(*cf.secretFile)
	if err != nil {
		return fmt.Errorf("--cluster-secret-file: %w", err)
	}
	f, err := os.Open(*from)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	start := time.Now()
	// No bound but the operator's: a large backup takes minutes to send,
	// check and install on every node; the leader bounds each step.
	res, err := cluster.Restore(ctx, *cf.node, secret, f, cluster.RestoreRequest{Size: fi.Size(), Force: *force, NewIncarnation: *newInc})
	if err != nil {
		return fmt.Errorf("cluster restore of %s: %w", *from, err)
	}
	b := res.Backup
	fmt.Fprintf(stdout, "restored %s into the cluster at raft index %d in %s: backup taken at %s, last seq %d, %d warnings, %d units, %d users, %d devices, %d photos\n",
		*from, res.Index, time.Since(start).Round(time.Millisecond), b.TakenAt.Format(time.RFC3339), b.LastSeq, b.Warnings, b.Units, b.Users, b.Devices, b.Blobs)
	if *newInc {
		fmt.Fprintf(stdout, "new incarnation %s: every phone resets at its next sync; it pushes the ops it still holds, then pulls its scope again\n", res.Incarnation)
	} else {
		fmt.Fprintf(stdout, "incarnation %s kept: phones go on with their cursors, no reset\n", res.Incarnation)
	}
	return nil
}
