package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/examples/internal/localserver"
	"github.com/fieldsync/fieldsync/server/province"
	"github.com/fieldsync/fieldsync/server/servertest"
)

func TestParseFlags_ThroughNginx(t *testing.T) {
	cfg, err := parseFlags([]string{"-through-nginx", "-devices", "3", "-duration", "5s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.throughNginx || cfg.devices != 3 {
		t.Errorf("parsed %+v, want -through-nginx with 3 devices", cfg)
	}
	if cfg, err := parseFlags(nil, io.Discard); err != nil || cfg.throughNginx {
		t.Errorf("no flag: through-nginx %v, %v; want the plain run", cfg != nil && cfg.throughNginx, err)
	}
}

func TestParseFlags_ThroughNginxRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"-through-nginx", "-devices", "1"},          // a partition without phones
		{"-through-nginx", "-data", t.TempDir()},     // one store for three
		{"-through-nginx", "-ops-target"},            // the plain run's table
		{"-through-nginx", "-cpuprofile", "cpu.out"}, // the plain run's profile
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) took it", args)
		}
	}
}

func TestSplitDevices(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{{200, []int{100, 100}}, {201, []int{101, 100}}, {2, []int{1, 1}}} {
		if got := splitDevices(tc.n, 2); !slices.Equal(got, tc.want) {
			t.Errorf("splitDevices(%d, 2) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

// Each phase on the partitions records on its own warnings: the halves
// are disjoint, and a phase cannot grow its half into the other's.
func TestFreshHalves(t *testing.T) {
	first, second := freshHalves([]string{"a", "b", "c", "d"})
	if !slices.Equal(first, []string{"a", "b"}) || !slices.Equal(second, []string{"c", "d"}) {
		t.Fatalf("halves %v %v", first, second)
	}
	_ = append(first, "x")
	if second[0] != "c" {
		t.Errorf("appending to the first half changed the second: %v", second)
	}
}

// The partitions' addresses go into server/province's configuration: one
// upstream per city at its server's address, /CODE/ proxied to it.
func TestProxyCities(t *testing.T) {
	parts := []*env{partition("http://127.0.0.1:4001/4110"), partition("http://127.0.0.1:4002/4101")}
	cities, err := proxyCities(parts)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{cities[0].Addrs[0], cities[1].Addrs[0]}; !slices.Equal(got, []string{"127.0.0.1:4001", "127.0.0.1:4002"}) {
		t.Fatalf("upstreams %v", got)
	}
	var conf strings.Builder
	if err := province.WriteNginx(&conf, cities, province.Options{Listen: "127.0.0.1:4000", Standalone: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server 127.0.0.1:4001;", "server 127.0.0.1:4002;", "location /4110/ {", "location /4101/ {", "listen 127.0.0.1:4000;"} {
		if !strings.Contains(conf.String(), want) {
			t.Errorf("the configuration lacks %q", want)
		}
	}
	if _, err := proxyCities([]*env{partition("http://127.0.0.1:4001")}); err == nil {
		t.Error("a partition served without its base path was taken")
	}
}

func partition(url string) *env {
	return &env{srv: &localserver.Server{Server: &servertest.Server{URL: url}}}
}
