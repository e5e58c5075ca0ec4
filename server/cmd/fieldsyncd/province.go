package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/server/province"
)

const provinceUsage = `usage: fieldsyncd province <command> [flags]

commands:
  nginx-config  print the nginx configuration that puts a province's
                cities (each its own fieldsyncd with --base-path /CODE)
                behind one address, with the index page of the cities at /
Run "fieldsyncd province <command> -h" for the flags of each.
`

// runProvince makes what a province of many cities needs around them.
func runProvince(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return commands{
		usage: provinceUsage,
		of:    "province",
		run: map[string]command{
			"nginx-config": withoutContext(runNginxConfig),
		},
	}.dispatch(ctx, args, stdout, stderr)
}

// runNginxConfig prints the nginx configuration of the cities file on
// stdout, for the operator to review and install; it writes nothing else.
func runNginxConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("province nginx-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	citiesFile := fs.String("cities", "", "the cities file: one city a line, CODE NAME ADDR [ADDR...], such as \"4110 许昌市 10.0.1.11:8080\" (required; docs/OPERATIONS.md)")
	var opts province.Options
	fs.StringVar(&opts.Listen, "listen", "80", "nginx's listen: a port or HOST:PORT")
	fs.StringVar(&opts.ServerName, "server-name", "_", "nginx's server_name, such as fieldsync.henan.example")
	fs.StringVar(&opts.Title, "title", province.DefaultTitle, "heading of the index page of the cities at /")
	fs.Int64Var(&opts.FeedLimit, "feed-limit", feed.DefaultLimit, "the cities' --feed-limit: the largest body, from which client_max_body_size follows")
	fs.StringVar(&opts.Standalone, "standalone", "", "make a whole nginx.conf that keeps its pid, logs and temporary files in this directory and runs in the foreground without root; without it, the http-level part for /etc/nginx/conf.d/")
	if err := parseOnly(fs, args, "cities"); err != nil {
		return err
	}
	f, err := os.Open(*citiesFile)
	if err != nil {
		return fmt.Errorf("--cities: %w", err)
	}
	defer f.Close()
	cities, err := province.ReadCities(f)
	if err != nil {
		return fmt.Errorf("%s: %w", *citiesFile, err)
	}
	return province.WriteNginx(stdout, cities, opts)
}
