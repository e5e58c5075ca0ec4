// Command netshape puts a rural 2G link between a phone and a fieldsync
// server, by hand: a phone emulator or examples/phone talks to the proxy,
// and the proxy relays to the server as slowly, as far away and as
// unreliably as the flags say (internal/netshape does the work).
//
//	go run ./server/cmd/fieldsyncd demo                  # server on 127.0.0.1:8080
//	go run ./examples/netshape -preset 2g                # proxy on 127.0.0.1:8081
//	go run ./examples/phone -server http://127.0.0.1:8081 -dir ./phone-data login a1
//	go run ./examples/netshape -preset gprs -lose-answers 0.2 -cut-after 20000
//
// An Android emulator reaches the proxy at http://10.0.2.2:8081. A preset
// sets every rate and delay; the other flags change it. The proxy prints
// what it relayed when it is stopped (Ctrl-C).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/fieldsync/fieldsync/examples/internal/cli"
	"github.com/fieldsync/fieldsync/internal/netshape"
)

func main() { cli.Main("netshape", cli.Command(parseFlags, serveLink)) }

// presets are the links -preset names.
var presets = map[string]func() netshape.Link{
	"":       func() netshape.Link { return netshape.Link{} },
	"gprs":   netshape.GPRS,
	"2g":     netshape.Regular2G,
	"good2g": netshape.Good2G,
}

// config is the command line.
type config struct {
	listen, target, preset string
	seed                   int64
	link                   netshape.Link
}

// flags defines the command line on c, with c's values as defaults.
func flags(c *config, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("netshape", flag.ContinueOnError)
	fs.SetOutput(stderr)
	l := &c.link
	fs.StringVar(&c.listen, "listen", c.listen, "address to listen on, on 127.0.0.1")
	fs.StringVar(&c.target, "target", c.target, "the server's host:port")
	fs.StringVar(&c.preset, "preset", c.preset, "start from a DevTools profile: gprs, 2g or good2g")
	fs.Int64Var(&c.seed, "seed", c.seed, "seed of the random losses and drops")
	fs.IntVar(&l.DownBitsPerSec, "down", l.DownBitsPerSec, "bits per second towards the phone (0: unlimited)")
	fs.IntVar(&l.UpBitsPerSec, "up", l.UpBitsPerSec, "bits per second towards the server (0: unlimited)")
	fs.DurationVar(&l.DownDelay, "down-delay", l.DownDelay, "one-way latency towards the phone")
	fs.DurationVar(&l.UpDelay, "up-delay", l.UpDelay, "one-way latency towards the server")
	fs.Int64Var(&l.CutAfter, "cut-after", l.CutAfter, "close each connection after this many bytes both ways (0: never)")
	fs.Float64Var(&l.LoseAnswers, "lose-answers", l.LoseAnswers, "probability that an answer is lost after the server did the work")
	fs.Float64Var(&l.DropRate, "drop-rate", l.DropRate, "probability per 512-byte chunk that the connection is reset")
	fs.BoolVar(&l.BlackHole, "blackhole", l.BlackHole, "relay nothing: the link has vanished")
	fs.BoolVar(&l.Refuse, "refuse", l.Refuse, "reset every connection: no route")
	return fs
}

// parseFlags reads the command line twice: once for -preset, then for the
// flags that change the preset's link, whose defaults -help then shows.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	first := &config{}
	flags(first, io.Discard).Parse(args) // errors are reported by the second parse
	preset, ok := presets[first.preset]
	if !ok {
		return nil, fmt.Errorf("unknown -preset %q: want gprs, 2g or good2g", first.preset)
	}
	c := &config{listen: "127.0.0.1:8081", target: "127.0.0.1:8080", preset: first.preset, seed: 1, link: preset()}
	fs := flags(c, stderr)
	if err := cli.ParseAll(fs, args); err != nil {
		return nil, err
	}
	if err := cli.LoopbackAddr("listen", c.listen); err != nil {
		return nil, err
	}
	return c, nil
}

// serveLink shapes the link until ctx ends.
func serveLink(ctx context.Context, c *config, stdout, stderr io.Writer) error {
	p, err := netshape.ListenOn(c.listen, c.target, c.link, c.seed)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "netshape: %s -> %s, link %+v\n", p.URL(), c.target, c.link)
	<-ctx.Done()
	st := p.Stats()
	if err := p.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "netshape: relayed %+v\n", st)
	return nil
}
