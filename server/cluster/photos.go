package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Photos across the nodes (docs/CLUSTER.md). Raft carries a photo's
// metadata, not its bytes: the node that receives a photo sends the
// checked file to the others over the cluster port before it submits the
// metadata, and the upload is acknowledged only once a majority of the
// voters, itself included, hold the file (ReplicatePhoto), so a photo
// acknowledged survives the loss of any minority of the nodes. A node
// that lacks a photo its metadata names (it was down, cut off, or slower
// than the majority) fetches it from a peer and checks its hash: when a
// phone asks for it (FetchPhoto), after it applied the photo's entry
// without the file (PhotoMissing), and at start and after a snapshot
// (the repair loop over store.MissingPhotoFiles).
//
// Two kinds of connection, one photo each:
//
//	put:   dialer -> the SHA-256 (64 hex bytes), the size (8 bytes, big endian)
//	       node   -> photoOK (it holds the file already: done) or photoNeed
//	       dialer -> the size's bytes
//	       node   -> photoOK, or photoFailed and a message (4-byte length, text)
//	fetch: dialer -> the SHA-256
//	       node   -> photoOK, the size, the bytes; or photoNone

const (
	kindPhotoPut   byte = 'P'
	kindPhotoFetch byte = 'G'

	photoOK     byte = 0
	photoNeed   byte = 1
	photoFailed byte = 2
	photoNone   byte = 3

	// photoRepairInterval is how often a node whose last repair left
	// photos missing tries again, from the whole list.
	photoRepairInterval = time.Minute
)

// errPhotoNotThere is a peer's answer to a fetch of a photo it lacks too.
var errPhotoNotThere = errors.New("the peer does not hold the photo")

// Wire points the store's options at the node: its writes go through
// raft (Replicate) and its photos to and from the other nodes.
func (n *Node) Wire(o *store.Options) {
	o.Replicate = n.Replicate
	o.ReplicatePhoto = n.ReplicatePhoto
	o.FetchPhoto = n.FetchPhoto
	o.PhotoMissing = n.PhotoMissing
}

// photoPeers are the other members of the cluster's configuration, and
// how many of its voters make a majority.
func (n *Node) photoPeers() (peers []raft.Server, majority int, selfVoter bool, err error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, 0, false, err
	}
	voters := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		if s.ID == raft.ServerID(n.cfg.NodeID) {
			selfVoter = s.Suffrage == raft.Voter
			continue
		}
		peers = append(peers, s)
	}
	return peers, voters/2 + 1, selfVoter, nil
}

// ReplicatePhoto is store.Options.ReplicatePhoto: it sends the photo's
// checked file at path to every other node at once and returns once a
// majority of the voters, this node included, hold it. When the nodes
// that have not answered can no longer make a majority, or none is made
// within the apply timeout, the upload is refused with no_quorum and its
// metadata is not committed. The sends still under way go on after a
// majority answered, until the timeout, so the last node seldom needs to
// fetch the photo.
func (n *Node) ReplicatePhoto(ctx context.Context, sum, path string, size int64) error {
	if n.raft == nil {
		return unavailable("starting", "this server is starting; retry shortly")
	}
	if err := n.stopped(); err != nil {
		return unavailable("stopped", "this server stopped; use another")
	}
	peers, majority, selfVoter, err := n.photoPeers()
	if err != nil {
		n.log.Warn("cluster: no configuration to send a photo to", "err", err)
		return noQuorum()
	}
	held := 0
	if selfVoter {
		held = 1
	}
	if held >= majority {
		return nil
	}
	type sent struct {
		peer  raft.Server
		voter bool
		err   error
	}
	results := make(chan sent, len(peers))
	// The sends live with the node, not the request: a majority ends
	// the request's wait, not the others' sends. The files are opened
	// here, before the metadata's apply renames the file.
	sending, cancel := context.WithTimeout(n.life, n.cfg.ApplyTimeout)
	var wg sync.WaitGroup
	voters := 0
	for _, p := range peers {
		f, err := os.Open(path)
		if err != nil {
			cancel()
			return fmt.Errorf("send photo %s: %w", sum, err)
		}
		voter := p.Suffrage == raft.Voter
		if voter {
			voters++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			results <- sent{peer: p, voter: voter, err: n.sendPhoto(sending, string(p.Address), sum, f, size)}
		}()
	}
	go func() {
		wg.Wait()
		cancel()
	}()
	var errs []error
	for held < majority {
		if held+voters < majority {
			break
		}
		select {
		case r := <-results:
			if !r.voter {
				continue
			}
			voters--
			if r.err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.peer.ID, r.err))
				continue
			}
			held++
		case <-ctx.Done():
			return ctx.Err()
		case <-sending.Done():
			errs = append(errs, sending.Err())
			voters = 0
		}
	}
	if held >= majority {
		return nil
	}
	n.counts.photoNoQuorum.Add(1)
	n.log.Warn("cluster: a photo reached no majority of the nodes; its upload is refused", "sha256", sum, "err", errors.Join(errs...))
	return noQuorum()
}

// sendPhoto puts the photo sum, size bytes of f, on the node at addr.
func (n *Node) sendPhoto(ctx context.Context, addr, sum string, f io.Reader, size int64) error {
	conn, err := dialAuth(addr, n.cfg.Secret, kindPhotoPut, n.cfg.ApplyTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	var head [64 + 8]byte
	copy(head[:64], sum)
	binary.BigEndian.PutUint64(head[64:], uint64(size))
	if _, err := conn.Write(head[:]); err != nil {
		return err
	}
	status, err := readStatus(conn)
	if err != nil || status == photoOK {
		return err
	}
	if status != photoNeed {
		return readFailure(conn, status)
	}
	if _, err := io.Copy(conn, io.LimitReader(f, size)); err != nil {
		return err
	}
	if status, err = readStatus(conn); err != nil || status == photoOK {
		return err
	}
	return readFailure(conn, status)
}

func readStatus(conn net.Conn) (byte, error) {
	var b [1]byte
	_, err := io.ReadFull(conn, b[:])
	return b[0], err
}

// readFailure reads the message that follows photoFailed.
func readFailure(conn net.Conn, status byte) error {
	if status != photoFailed {
		return fmt.Errorf("an unknown answer %d", status)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return err
	}
	msg := make([]byte, min(binary.BigEndian.Uint32(size[:]), 4096))
	if _, err := io.ReadFull(conn, msg); err != nil {
		return err
	}
	return fmt.Errorf("the peer refused the photo: %s", msg)
}

func writeFailure(conn net.Conn, err error) {
	msg := err.Error()
	out := []byte{photoFailed, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	_, _ = conn.Write(append(out, msg...))
}

// servePhotoPut takes one photo another node sends: installed when its
// bytes hash to its name (store.InstallPhoto), with no metadata until
// that node's entry is applied here.
func (n *Node) servePhotoPut(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(n.cfg.ApplyTimeout))
	var head [64 + 8]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return
	}
	sum, size := string(head[:64]), int64(binary.BigEndian.Uint64(head[64:]))
	if !syncproto.ValidSHA256(sum) || size < 0 || size > syncproto.MaxBlobBytes {
		writeFailure(conn, errors.New("not a photo's SHA-256 and size"))
		return
	}
	if n.st.HasPhotoFile(sum, size) {
		_, _ = conn.Write([]byte{photoOK})
		return
	}
	if _, err := conn.Write([]byte{photoNeed}); err != nil {
		return
	}
	if err := n.st.InstallPhoto(sum, size, conn); err != nil {
		if errors.Is(err, store.ErrPhotoMismatch) {
			n.log.Warn("cluster: a node sent a photo whose bytes do not match its hash; refused", "remote", conn.RemoteAddr().String(), "sha256", sum)
		}
		writeFailure(conn, err)
		return
	}
	_, _ = conn.Write([]byte{photoOK})
}

// servePhotoFetch sends a photo this node holds to a node that lacks it.
func (n *Node) servePhotoFetch(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(n.cfg.ApplyTimeout))
	var sum [64]byte
	if _, err := io.ReadFull(conn, sum[:]); err != nil {
		return
	}
	f, size, err := n.st.OpenPhotoFile(string(sum[:]))
	if err != nil {
		_, _ = conn.Write([]byte{photoNone})
		return
	}
	defer f.Close()
	var head [1 + 8]byte
	head[0] = photoOK
	binary.BigEndian.PutUint64(head[1:], uint64(size))
	if _, err := conn.Write(head[:]); err != nil {
		return
	}
	_, _ = io.Copy(conn, io.LimitReader(f, size))
}

// fetchFrom fetches the photo sum from the node at addr and installs it.
func (n *Node) fetchFrom(ctx context.Context, addr, sum string) error {
	conn, err := dialAuth(addr, n.cfg.Secret, kindPhotoFetch, n.cfg.ApplyTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := conn.Write([]byte(sum)); err != nil {
		return err
	}
	status, err := readStatus(conn)
	if err != nil {
		return err
	}
	if status == photoNone {
		return errPhotoNotThere
	}
	if status != photoOK {
		return fmt.Errorf("an unknown answer %d", status)
	}
	var size [8]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return err
	}
	return n.st.InstallPhoto(sum, int64(binary.BigEndian.Uint64(size[:])), conn)
}

// fetchPhoto fetches the photo sum from the first peer that holds it.
// Bytes that do not hash to sum are refused and the next peer tried.
func (n *Node) fetchPhoto(ctx context.Context, sum string) error {
	if n.raft == nil {
		return errors.New("the node is not started")
	}
	if !syncproto.ValidSHA256(sum) {
		return fmt.Errorf("fetch photo: %q is not a SHA-256", sum)
	}
	peers, _, _, err := n.photoPeers()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	var errs []error
	for _, p := range peers {
		err := n.fetchFrom(ctx, string(p.Address), sum)
		if err == nil {
			n.counts.photosFetched.Add(1)
			return nil
		}
		if errors.Is(err, store.ErrPhotoMismatch) {
			n.log.Warn("cluster: a node sent a photo whose bytes do not match its hash; refused", "peer", string(p.ID), "sha256", sum)
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.ID, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return errors.New("no other node to fetch from")
	}
	return errors.Join(errs...)
}

// FetchPhoto is store.Options.FetchPhoto: a phone asks this node for a
// photo whose file it lacks, which is fetched from a peer before it is
// served. None holds it: unavailable, and the phone retries here or
// elsewhere.
func (n *Node) FetchPhoto(ctx context.Context, sum string) error {
	err := n.fetchPhoto(ctx, sum)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	n.log.Warn("cluster: a photo asked for is not here and could not be fetched", "sha256", sum, "err", err)
	return unavailable("photo_not_here", "this server does not hold this photo yet and could not fetch it from another; retry shortly or use another server")
}

// PhotoMissing is store.Options.PhotoMissing: the photo is fetched by the
// repair loop, soon.
func (n *Node) PhotoMissing(sum string) {
	n.repairMu.Lock()
	n.repairDue[sum] = struct{}{}
	n.repairMu.Unlock()
	n.kickRepair()
}

// repairAll has the repair loop check every photo: at start and after a
// snapshot, which may name photos this node never got.
func (n *Node) repairAll() {
	n.repairMu.Lock()
	n.repairFull = true
	n.repairMu.Unlock()
	n.kickRepair()
}

func (n *Node) kickRepair() {
	select {
	case n.repairKick <- struct{}{}:
	default:
	}
}

// repairPhotos fetches the photos this node lacks, when told of them, and
// again from the whole list each photoRepairInterval while some are left.
func (n *Node) repairPhotos() {
	defer n.wg.Done()
	retry := time.NewTicker(photoRepairInterval)
	defer retry.Stop()
	for {
		select {
		case <-n.life.Done():
			return
		case <-n.repairKick:
		case <-retry.C:
			if n.counts.photosMissing.Load() == 0 {
				continue
			}
			n.repairMu.Lock()
			n.repairFull = true
			n.repairMu.Unlock()
		}
		n.repairRound()
	}
}

// repairRound fetches the photos due, or every photo missing here after
// a start or a snapshot; photosMissing counts those left.
func (n *Node) repairRound() {
	n.repairMu.Lock()
	full, due := n.repairFull, n.repairDue
	n.repairFull, n.repairDue = false, map[string]struct{}{}
	n.repairMu.Unlock()
	var sums []string
	if full {
		var err error
		if sums, err = n.st.MissingPhotoFiles(); err != nil {
			n.log.Warn("cluster: could not list the photos missing here", "err", err)
			n.repairMu.Lock()
			n.repairFull = true
			n.repairMu.Unlock()
			return
		}
	} else {
		for sum := range due {
			sums = append(sums, sum)
		}
	}
	left := 0
	var firstErr error
	for _, sum := range sums {
		if n.life.Err() != nil {
			return
		}
		if err := n.fetchPhoto(n.life, sum); err != nil {
			left++
			if firstErr == nil {
				firstErr = fmt.Errorf("photo %s: %w", sum, err)
			}
		}
	}
	if full {
		n.counts.photosMissing.Store(int64(left))
	} else {
		n.counts.photosMissing.Add(int64(left))
	}
	if left > 0 {
		n.log.Warn("cluster: photos missing here could not be fetched; retried later", "left", left, "err", firstErr)
	}
}
