// Command load drives a real fieldsync server, in this process on
// 127.0.0.1, with many phones at once and prints the figures DESIGN.md sets
// targets for: durable ops per second, push and pull latency, the time and
// bytes of a pull with no changes, the size of a warning on the wire, a
// township lead's initial sync of 10,000 warnings, and memory.
//
// The server is the real one (servertest.Open: store, service, HTTP API)
// with fsync on, so every acknowledged op is durable. The phones are
// remote.Client instances speaking MessagePack over loopback HTTP, each its
// own village cadre of the demo city of Xuchang. Each phone loops for
// -duration: push a batch of -batch dissuasion.recorded ops, then pull until
// `more` is false, as the SDK syncs. Like the SDK, each phone keeps the
// states of its scope from its first sync, computes after each push the
// states the server made of its ops (clientsdk.ExpectedState) and sends
// their hashes as the pull's have, so the pull leaves them out (kept);
// -have=false measures pulls that carry them back.
//
//	go run ./examples/load                     # defaults: 200 devices, 20 s
//	go run ./examples/load -ops-target         # also PASS/FAIL per target
//	go run ./examples/load -cpuprofile cpu.out # profile the load phase
//	go run ./examples/load -memprofile mem.out # its allocations: go tool pprof -sample_index=alloc_space -base mem.out.base mem.out
//	go run ./examples/load -through-nginx      # two partitions behind nginx
//	go run ./examples/load -cluster            # one node against three, failovers
//	go run ./examples/load -rates 2000,10000   # open loop at each rate in turn
//
// With -rate or -rates it runs the open loop (openloop.go) instead: each
// phone pushes on a schedule of its own, so that the ops arrive at a
// fixed rate whether or not the server keeps up, one push at a time and
// each followed by its pull; a push is timed from when it was due. It
// runs a phase per rate against one setup and prints a line per rate.
// Both loops end with what the load phase wrote into bbolt, by bucket.
//
// With -through-nginx it runs the load phase three times in one run, with
// the same phones, batches and duration: against one partition direct,
// then against two partitions (each its own server under its city's base
// path, /4110 and /4101) through a real nginx with the configuration
// `fieldsyncd province nginx-config` makes, then against the same two
// direct; and prints the proxy's cost per request. Where nginx is not
// installed it says so in one line and runs the first phase alone.
//
// With -cluster it runs the load phase against one node, then against a
// three-node cluster (server/cluster, hashicorp/raft) in this process on
// loopback, its phones spread over the three as a load balancer would,
// then the same with the stores' fsync off (raft's log keeps its own),
// and prints the cluster's throughput as a share of the node's; then it
// starts three fieldsyncd processes, SIGKILLs the leader -kills times
// while phones push, and prints the time from each kill to the next
// acknowledged push (docs/BENCHMARKS.md says why each part runs where).
//
// It never exits non-zero because a target was missed: it reports figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with -pprof, on 127.0.0.1
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/cli"
	"github.com/fieldsync/fieldsync/examples/internal/machine"
	"github.com/fieldsync/fieldsync/server/store"
)

func main() { cli.Main("load", cli.Command(parseFlags, runLoad)) }

// config is the command line.
type config struct {
	devices           int
	duration          time.Duration
	batch             int
	maxBatches        int
	warningsPerDevice int
	townshipWarnings  int
	noChangePulls     int
	opsTarget         bool
	noSync            bool
	gzip              bool
	have              bool
	seed              int64
	pprofAddr         string
	cpuProfile        string
	memProfile        string
	dir               string
	throughNginx      bool
	cluster           bool
	kills             int
	fieldsyncd        string
	// rates are the open loop's rates in ops/s, one load phase each;
	// empty for the closed loop (openloop.go).
	rates []int
}

// Open-loop defaults, where the command line leaves them: enough phones
// that each pushes at most once a second at 20,000 ops/s, holding
// together the closed loop's 100,000 warnings; a shorter phase per rate.
const (
	openLoopDevices  = 1000
	openLoopWarnings = 100
	openLoopDuration = 15 * time.Second
)

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.devices, "devices", 200, "phones syncing at once, each its own village cadre")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long the phones push and pull")
	fs.IntVar(&c.batch, "batch", 20, "dissuasion.recorded ops per push")
	fs.IntVar(&c.maxBatches, "max-batches", 100_000, "at most this many pushes per phone, whatever the duration")
	fs.IntVar(&c.warningsPerDevice, "warnings", 500, "warnings assigned to each phone; its attempts go to them in turn")
	fs.IntVar(&c.townshipWarnings, "township-warnings", 10_000, "warnings of the township whose lead does an initial sync")
	fs.IntVar(&c.noChangePulls, "nochange-pulls", 1000, "sequential pulls at the head to time a no-change pull")
	fs.BoolVar(&c.opsTarget, "ops-target", false, "print PASS/FAIL against the targets of DESIGN.md")
	fs.BoolVar(&c.noSync, "nosync", false, "turn fsync off (not durable; to see what fsync costs)")
	fs.BoolVar(&c.gzip, "gzip", true, "accept gzip responses, as phones do")
	fs.BoolVar(&c.have, "have", true, "phones keep their warnings' states, compute what their pushes made of them and send have, so pulls leave those out (as the SDK does); false: every pull carries them back")
	fs.Int64Var(&c.seed, "seed", 1, "seed of the demo city and feed")
	fs.StringVar(&c.pprofAddr, "pprof", "", "serve net/http/pprof on this 127.0.0.1 address, e.g. 127.0.0.1:6060")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the load phase to this file")
	fs.StringVar(&c.memProfile, "memprofile", "", "write the allocations profile at the end of the load phase to this file, and the one at its start to this file plus .base (go tool pprof -base FILE.base FILE: the load phase's allocations)")
	fs.StringVar(&c.dir, "data", "", "store directory (default: a new temporary one, removed at the end)")
	fs.BoolVar(&c.throughNginx, "through-nginx", false, "compare one partition direct with two behind a real nginx (the province's configuration) and print the proxy's cost per request")
	fs.BoolVar(&c.cluster, "cluster", false, "compare one node with a three-node cluster on loopback (stores' fsync on, then off), then time failovers of the leader")
	fs.IntVar(&c.kills, "kills", 10, "with -cluster: SIGKILLs of the leader of three fieldsyncd processes (0: none)")
	fs.StringVar(&c.fieldsyncd, "fieldsyncd", "", "with -cluster: the fieldsyncd binary the failovers run (default: go build it)")
	rate := fs.Int("rate", 0, "open loop: pushes arrive at this many ops/s on a schedule per phone, whether or not the last was answered (0: closed loop); defaults to 1000 devices, 100 warnings each, 15 s")
	rates := fs.String("rates", "", "open loop at each of these comma-separated ops/s in turn, e.g. 2000,10000,20000, after one setup")
	if err := cli.ParseAll(fs, args); err != nil {
		return nil, err
	}
	if err := c.parseRates(fs, *rate, *rates); err != nil {
		return nil, err
	}
	switch {
	case c.devices < 1 || c.devices > 5000:
		return nil, errors.New("-devices must be between 1 and 5000")
	case c.batch < 1 || c.batch > 500:
		return nil, errors.New("-batch must be between 1 and 500 (the protocol's limit)")
	case c.duration <= 0 || c.duration > time.Hour:
		return nil, errors.New("-duration must be positive and at most an hour")
	case c.maxBatches < 1:
		return nil, errors.New("-max-batches must be positive")
	case c.warningsPerDevice < 1:
		return nil, errors.New("-warnings must be positive")
	case c.townshipWarnings < 0 || c.townshipWarnings > 500_000:
		return nil, errors.New("-township-warnings must be between 0 and 500000")
	case c.noChangePulls < 1:
		return nil, errors.New("-nochange-pulls must be positive")
	case c.throughNginx && c.devices < len(partitionCities):
		return nil, fmt.Errorf("-through-nginx needs at least %d devices, one per partition", len(partitionCities))
	case c.throughNginx && c.dir != "":
		return nil, errors.New("-through-nginx starts three stores in temporary folders: -data names one")
	case c.throughNginx && (c.cpuProfile != "" || c.memProfile != "" || c.opsTarget):
		return nil, errors.New("-through-nginx prints its own comparison: -cpuprofile, -memprofile and -ops-target are for the plain run")
	case c.cluster && c.throughNginx:
		return nil, errors.New("-cluster and -through-nginx are two runs: give one")
	case c.cluster && (c.dir != "" || c.noSync || c.cpuProfile != "" || c.memProfile != "" || c.opsTarget):
		return nil, errors.New("-cluster starts its stores in temporary folders with fsync on and prints its own comparison: -data, -nosync, -cpuprofile, -memprofile and -ops-target are for the plain run")
	case c.kills < 0 || c.kills > 100:
		return nil, errors.New("-kills must be between 0 and 100")
	case c.fieldsyncd != "" && !c.cluster:
		return nil, errors.New("-fieldsyncd is for -cluster")
	case len(c.rates) > 0 && (c.cluster || c.throughNginx || c.opsTarget):
		return nil, errors.New("-rate and -rates run the open loop on one server: -cluster, -through-nginx and -ops-target are for the closed loop")
	}
	if c.pprofAddr != "" {
		if err := cli.LoopbackAddr("pprof", c.pprofAddr); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// serverGCPercent is fieldsyncd's default --gc-percent: the server runs
// in this process, so the process collects as fieldsyncd would. (Its
// --memory-limit is left out: the phones' heap shares the process.)
const serverGCPercent = 400

// gcPercent is the runtime's GC percent in effect.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// runLoad sets up the city, loads the server and prints the figures.
func runLoad(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	if _, set := os.LookupEnv("GOGC"); !set {
		defer debug.SetGCPercent(debug.SetGCPercent(serverGCPercent))
	}
	if cfg.pprofAddr != "" {
		ln, err := net.Listen("tcp", cfg.pprofAddr)
		if err != nil {
			return fmt.Errorf("pprof: %w", err)
		}
		srv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(stderr, "pprof on http://%s/debug/pprof/\n", ln.Addr())
	}

	if cfg.throughNginx {
		return runThroughNginx(ctx, cfg, stdout, stderr)
	}
	if cfg.cluster {
		return runCluster(ctx, cfg, stdout, stderr)
	}
	if len(cfg.rates) > 0 {
		return runOpenLoop(ctx, cfg, stdout, stderr)
	}
	fmt.Fprintf(stdout, "fieldsync load: %d devices, batches of %d ops, %v, fsync %s, GOMAXPROCS %d, GC percent %d, %s\n",
		cfg.devices, cfg.batch, cfg.duration, onOff(!cfg.noSync), runtime.GOMAXPROCS(0), gcPercent(), runtime.Version())
	env, err := setup(ctx, cfg, "", stderr)
	if err != nil {
		return err
	}
	defer env.close()
	rep := &report{cfg: cfg}

	// A no-change pull before the load, with the log as the setup left it.
	before, err := env.pullPoint(ctx, "before load")
	if err != nil {
		return err
	}
	rep.pulls = []*pullPoint{env.early, before}

	sizes, err := env.bucketSizes(stderr)
	if err != nil {
		return err
	}
	stopProfile, err := startProfiles(cfg.cpuProfile, cfg.memProfile)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "load: %d devices for %v ...\n", cfg.devices, cfg.duration)
	rep.loadAvgBefore = machine.LoadAverage()
	start := snapshot(env.srv.Store)
	rep.load, err = env.runLoad(ctx, stderr)
	rep.diag = diff(start, snapshot(env.srv.Store))
	rep.loadAvgAfter = machine.LoadAverage()
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	if rep.buckets, err = env.bucketGrowth(sizes, rep.load.acked, rep.diag.pageBytes, stderr); err != nil {
		return err
	}

	// The same pull after the load, with the log grown by every op pushed.
	after, err := env.pullPoint(ctx, "after load")
	if err != nil {
		return err
	}
	rep.pulls = append(rep.pulls, after)
	if rep.warning, err = env.warningSize(ctx, env.probe); err != nil {
		return err
	}
	if cfg.townshipWarnings > 0 {
		fmt.Fprintf(stderr, "initial sync: importing %d warnings into a township ...\n", cfg.townshipWarnings)
		if rep.initial, err = env.initialSync(ctx, cfg.townshipWarnings); err != nil {
			return err
		}
	}
	rep.mem = readMemory()
	if fi, err := os.Stat(filepath.Join(env.srv.Dir, store.DBFile)); err == nil {
		rep.storeFile = fi.Size()
	}
	rep.print(stdout)
	return nil
}

// startCPUProfile writes a CPU profile to path until stop is called;
// with no path it does nothing.
// startProfiles starts a CPU profile into cpu and writes the allocations
// so far into mem+".base" (each skipped when its path is empty); stop ends
// the CPU profile and writes the allocations into mem, so that the two
// allocation profiles' difference is the load phase's.
func startProfiles(cpu, mem string) (stop func() error, err error) {
	if mem != "" {
		if err := writeAllocs(mem + ".base"); err != nil {
			return nil, err
		}
	}
	var f *os.File
	if cpu != "" {
		if f, err = os.Create(cpu); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
	}
	var once sync.Once
	var stopErr error
	return func() error {
		once.Do(func() { stopErr = stop1(f, mem) })
		return stopErr
	}, nil
}

// stop1 ends startProfiles' profiles; its stop calls it once.
func stop1(f *os.File, mem string) error {
	if f != nil {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return err
		}
	}
	if mem != "" {
		return writeAllocs(mem)
	}
	return nil
}

// writeAllocs writes the allocations profile (every allocation since the
// program started, sampled) into path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
