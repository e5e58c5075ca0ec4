package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/examples/internal/machine"
	"github.com/fieldsync/fieldsync/internal/nginxproc"
	"github.com/fieldsync/fieldsync/server/province"
)

// partitionCities are the two partitions of -through-nginx: each its own
// server (store, service, HTTP API) under its city's base path, with the
// nginx configuration `fieldsyncd province nginx-config` makes for them.
// Both hold a copy of the demo city (the load's data, whose units are
// Xuchang's whatever the path): the proxy routes by the path's first
// segment and never looks at what a city holds.
var partitionCities = []province.City{
	{Code: "4110", Name: "许昌市"},
	{Code: "4101", Name: "郑州市"},
}

// splitDevices is how many of n phones each of k partitions gets: the
// same phones as the direct run, spread as evenly as they go.
func splitDevices(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// phase is one load phase of -through-nginx and what it cost.
type phase struct {
	name                        string
	res                         *loadResult
	cpu                         time.Duration // of this process: servers and phones
	nginxCPU                    time.Duration // of nginx, when it carried the phase
	loadAvgBefore, loadAvgAfter string
}

// runThroughNginx runs the same load three times and compares: one
// partition direct (the plain load program's server), then two
// partitions, each its own server under its city's base path, through a
// real nginx configured by server/province, then the same two partitions
// direct. The last pair differ only by the proxy, so their difference is
// its cost per request. Without nginx the first phase runs alone.
func runThroughNginx(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "fieldsync load through nginx: %d devices, batches of %d ops, %v per phase, fsync %s\n",
		cfg.devices, cfg.batch, cfg.duration, onOff(!cfg.noSync))
	var phases []*phase

	one, err := setup(ctx, cfg, "", stderr)
	if err != nil {
		return fmt.Errorf("one partition: %w", err)
	}
	p, err := runPhase(ctx, cfg, "one partition, direct", one.devices, nil, stderr)
	one.close()
	if err != nil {
		return err
	}
	phases = append(phases, p)

	bin := nginxproc.Find()
	if bin == "" {
		fmt.Fprintf(stdout, "through nginx: skipped, %s\n", nginxproc.Missing)
		printPhases(stdout, phases)
		return nil
	}
	var parts []*env
	defer func() {
		for _, e := range parts {
			e.close()
		}
	}()
	for i, n := range splitDevices(cfg.devices, len(partitionCities)) {
		pcfg := *cfg
		pcfg.devices = n
		// Each phase on the partitions records on warnings of its own
		// (freshHalves): a warning's put grows with its attempts, so a
		// second phase on the first one's warnings would pull more.
		pcfg.warningsPerDevice = 2 * cfg.warningsPerDevice
		c := partitionCities[i]
		fmt.Fprintf(stderr, "partition %s: %d devices\n", c.BasePath(), n)
		e, err := setup(ctx, &pcfg, c.BasePath(), stderr)
		if err != nil {
			return fmt.Errorf("partition %s: %w", c.BasePath(), err)
		}
		parts = append(parts, e)
	}
	proxy, err := startProxy(ctx, bin, parts)
	if err != nil {
		return err
	}
	defer func() {
		if err := proxy.Close(); err != nil {
			fmt.Fprintln(stderr, err)
		}
		os.RemoveAll(proxy.Dir)
	}()

	var direct, viaProxy []*device
	hc := proxyClient(cfg.devices, !cfg.gzip)
	for i, e := range parts {
		for _, d := range e.devices {
			p := d.through(proxy.URL+partitionCities[i].BasePath(), hc)
			p.warnings, d.warnings = freshHalves(d.warnings)
			direct = append(direct, d)
			viaProxy = append(viaProxy, p)
		}
	}
	if p, err = runPhase(ctx, cfg, "two partitions, through nginx", viaProxy, proxy, stderr); err != nil {
		return err
	}
	phases = append(phases, p)
	// The same phones, the same servers, without the proxy. A phone's
	// sequence and cursor carried on from the phase through nginx.
	for i, d := range direct {
		d.seq, d.next, d.cursor = viaProxy[i].seq, viaProxy[i].next, viaProxy[i].cursor
	}
	if p, err = runPhase(ctx, cfg, "two partitions, direct", direct, nil, stderr); err != nil {
		return err
	}
	phases = append(phases, p)
	printPhases(stdout, phases)
	return nil
}

// freshHalves splits a phone's warnings into one half for each phase on
// the partitions, so each starts on warnings with no attempt yet, as the
// phase on one partition does.
func freshHalves(ws []string) (first, second []string) {
	half := len(ws) / 2
	return ws[:half:half], ws[half:]
}

// through is d speaking to base (a city behind the proxy) with the same
// device, token, sequence and cursor.
func (d *device) through(base string, hc *http.Client) *device {
	c := remote.New(base)
	c.HTTP = hc
	c.Codec, c.Gzip = d.c.Codec, d.c.Gzip
	c.SetToken(d.c.Token())
	dd := *d
	dd.c = c
	return &dd
}

// proxyClient reaches nginx with a connection kept alive per phone, as
// localserver's transport reaches a server.
func proxyClient(devices int, noGzip bool) *http.Client {
	conns := max(256, 2*devices)
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  noGzip,
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// startProxy writes the nginx configuration of the partitions with
// server/province (the form `fieldsyncd province nginx-config
// --standalone` prints) and runs nginx on it on a free loopback port.
func startProxy(ctx context.Context, bin string, parts []*env) (*nginxproc.Nginx, error) {
	cities, err := proxyCities(parts)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "load-nginx-*")
	if err != nil {
		return nil, err
	}
	addr, err := nginxproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	var conf strings.Builder
	if err := province.WriteNginx(&conf, cities, province.Options{Listen: addr, Standalone: dir}); err != nil {
		return nil, err
	}
	n, err := nginxproc.Start(ctx, bin, dir, addr, []byte(conf.String()))
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return n, nil
}

// proxyCities are partitionCities with the address each partition's
// server listens on.
func proxyCities(parts []*env) ([]province.City, error) {
	var cities []province.City
	for i, e := range parts {
		c := partitionCities[i]
		hostPort, ok := strings.CutSuffix(strings.TrimPrefix(e.srv.URL, "http://"), c.BasePath())
		if !ok {
			return nil, fmt.Errorf("partition %s serves at %s, not under its base path", c.Code, e.srv.URL)
		}
		c.Addrs = []string{hostPort}
		cities = append(cities, c)
	}
	return cities, nil
}

// runPhase runs one load phase on devices and what it cost: the CPU of
// this process and, when proxy carried it, of nginx.
func runPhase(ctx context.Context, cfg *config, name string, devices []*device, proxy *nginxproc.Nginx, stderr io.Writer) (*phase, error) {
	fmt.Fprintf(stderr, "load: %s, %d devices for %v ...\n", name, len(devices), cfg.duration)
	p := &phase{name: name, loadAvgBefore: machine.LoadAverage()}
	cpu0 := selfCPU()
	var nginx0 time.Duration
	if proxy != nil {
		nginx0 = procCPU(proxy.Pid())
	}
	res, err := loadDevices(ctx, cfg, devices, stderr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p.res, p.cpu, p.loadAvgAfter = res, selfCPU()-cpu0, machine.LoadAverage()
	if proxy != nil {
		p.nginxCPU = procCPU(proxy.Pid()) - nginx0
	}
	return p, nil
}

// selfCPU is this process's user and system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

// procCPU is a process's user and system time from /proc/PID/stat, or 0
// where there is none.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing one, where state is field 3.
	_, rest, ok := strings.Cut(string(data), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * clockTick
}
