package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// result holds every figure the program prints.
type result struct {
	cfg                         *config
	version                     string
	records, txns, reads        int64 // acknowledged
	readKeys                    int64 // keys the reads returned
	wall                        time.Duration
	txnLat, readLat             []time.Duration
	errors                      int64
	firstErr                    error
	etcdCPU, ownCPU             time.Duration // during the load phase
	walFsyncs, backendCommits   int64         // during the load phase
	loadAvgBefore, loadAvgAfter string
}

// clientResult is one client's share, merged at the end.
type clientResult struct {
	records, txns, reads, readKeys int64
	txnLat, readLat                []time.Duration
	errors                         int64
	firstErr                       error
}

// runLoad runs cfg.clients clients against srv for cfg.duration, each
// with its own connection, as each phone has its own.
func runLoad(ctx context.Context, cfg *config, srv *etcdServer) (*result, error) {
	clients := make([]*clientv3.Client, cfg.clients)
	for i := range clients {
		cli, err := srv.client()
		if err != nil {
			return nil, err
		}
		defer cli.Close()
		clients[i] = cli
	}
	res := &result{cfg: cfg, version: srv.version, loadAvgBefore: loadAverage()}
	fsyncs0, commits0, err := srv.metrics(ctx)
	if err != nil {
		return nil, err
	}
	etcdCPU0, err := srv.cpu()
	if err != nil {
		return nil, err
	}
	ownCPU0 := processCPU()

	start := time.Now()
	deadline := start.Add(cfg.duration)
	shares := make([]clientResult, cfg.clients)
	var wg sync.WaitGroup
	for i, cli := range clients {
		wg.Go(func() { shares[i] = runClient(ctx, cfg, cli, i, deadline) })
	}
	wg.Wait()
	res.wall = time.Since(start)

	etcdCPU1, err := srv.cpu()
	if err != nil {
		return nil, err
	}
	res.etcdCPU, res.ownCPU = etcdCPU1-etcdCPU0, processCPU()-ownCPU0
	fsyncs1, commits1, err := srv.metrics(ctx)
	if err != nil {
		return nil, err
	}
	res.walFsyncs, res.backendCommits = fsyncs1-fsyncs0, commits1-commits0
	res.loadAvgAfter = loadAverage()
	for _, s := range shares {
		res.records += s.records
		res.txns += s.txns
		res.reads += s.reads
		res.readKeys += s.readKeys
		res.txnLat = append(res.txnLat, s.txnLat...)
		res.readLat = append(res.readLat, s.readLat...)
		res.errors += s.errors
		if res.firstErr == nil {
			res.firstErr = s.firstErr
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// runClient loops until deadline: one transaction of cfg.puts puts to the
// client's next keys, then one read. A failed request is counted and the
// loop goes on, as a phone retries.
func runClient(ctx context.Context, cfg *config, cli *clientv3.Client, n int, deadline time.Time) clientResult {
	var r clientResult
	fail := func(err error) {
		r.errors++
		if r.firstErr == nil {
			r.firstErr = err
		}
	}
	prefix := fmt.Sprintf("/etcdload/c%05d/", n)
	keys := make([]string, cfg.keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%sk%07d", prefix, i)
	}
	// Random bytes, each value made different by a counter in front:
	// etcd stores values as given, so their content costs nothing more.
	value := make([]byte, cfg.valueBytes)
	rng := rand.New(rand.NewPCG(uint64(n), 17))
	for i := range value {
		value[i] = byte(rng.Uint32())
	}
	ops := make([]clientv3.Op, cfg.puts)
	var next int       // the first key of the next transaction
	var seen int64     // the revision the client's last read saw
	var written uint64 // puts made, the values' counter
	for time.Now().Before(deadline) && ctx.Err() == nil {
		// Keys stay contiguous within a transaction, so -read written is
		// one range; with the defaults (500 keys, 20 puts) every key is used.
		if next+cfg.puts > cfg.keys {
			next = 0
		}
		first := next
		for j := range ops {
			written++
			binary.BigEndian.PutUint64(value, written)
			ops[j] = clientv3.OpPut(keys[next], string(value))
			next++
		}
		opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		t0 := time.Now()
		_, err := cli.Txn(opCtx).Then(ops...).Commit()
		lat := time.Since(t0)
		cancel()
		if err != nil {
			fail(fmt.Errorf("txn: %w", err))
			continue
		}
		r.txns++
		r.records += int64(cfg.puts)
		r.txnLat = append(r.txnLat, lat)

		opCtx, cancel = context.WithTimeout(ctx, 30*time.Second)
		t0 = time.Now()
		var resp *clientv3.GetResponse
		if cfg.read == readChanges {
			// What changed in the client's keys since its last read: a
			// pull from its cursor. Linearizable, etcd's default, as a
			// pull sees every acknowledged push.
			resp, err = cli.Get(opCtx, prefix, clientv3.WithPrefix(), clientv3.WithMinModRev(seen+1))
		} else {
			resp, err = cli.Get(opCtx, keys[first], clientv3.WithRange(keys[next-1]+"\x00"))
		}
		lat = time.Since(t0)
		cancel()
		if err != nil {
			fail(fmt.Errorf("read: %w", err))
			continue
		}
		r.reads++
		r.readKeys += int64(len(resp.Kvs))
		r.readLat = append(r.readLat, lat)
		seen = resp.Header.Revision
	}
	return r
}

// processCPU is the CPU this process (the clients) has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the 1-minute load average as /proc/loadavg says, or "?".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
