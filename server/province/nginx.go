package province

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Options shape the generated configuration; zero values take defaults.
type Options struct {
	// Listen is nginx's listen argument: a port or HOST:PORT (80).
	Listen string
	// ServerName is nginx's server_name ("_": any).
	ServerName string
	// Title heads the index page (DefaultTitle).
	Title string
	// FeedLimit is the largest feed file the cities take (their
	// --feed-limit; feed.DefaultLimit): the largest body a request
	// carries, so client_max_body_size is set from it.
	FeedLimit int64
	// Standalone, when set, makes a whole nginx.conf whose pid, logs and
	// temporary files are in this directory and that stays in the
	// foreground (daemon off): nginx runs without root as
	// `nginx -p DIR -c DIR/nginx.conf -e DIR/error.log`. Empty makes the
	// http-level part alone, for /etc/nginx/conf.d/.
	Standalone string
}

// DefaultTitle heads the index page unless Options.Title is set.
const DefaultTitle = "预警劝阻工作台"

// Timeouts of the proxy. nginx's timeouts bound the gap between two
// reads or writes, not a whole request, so a photo crossing a 2G link at
// a few hundred bytes a second passes as long as bytes keep coming.
const (
	// ProxyReadTimeout bounds the wait for the city's answer: above the
	// longest held pull (syncproto.MaxPullWait) with room for the answer
	// to cross a 2G link after it (docs/OPERATIONS.md, "Long polls
	// behind a proxy").
	ProxyReadTimeout = syncproto.MaxPullWait*time.Second + 40*time.Second
	// SlowLinkTimeout bounds a pause in a phone's body or in its reading
	// of the answer (nginx's client_body_timeout, send_timeout and
	// proxy_send_timeout): a 2G link stalls for tens of seconds and
	// recovers.
	SlowLinkTimeout = 120 * time.Second
	// KeepaliveTimeout keeps an idle phone's connection open longer than
	// the SDK keeps it (55 s), so the phone, not the proxy, closes it and
	// never sends on a connection the proxy is closing.
	KeepaliveTimeout = 75 * time.Second
)

// BodyLimit is client_max_body_size for a feed limit: the largest body
// any request carries (a feed file in a console form, with the form's
// own bytes; a photo; a push), rounded up to whole MiB.
func BodyLimit(feedLimit int64) string {
	if feedLimit <= 0 {
		feedLimit = feed.DefaultLimit
	}
	n := max(feedLimit+1<<20, syncproto.MaxBlobBytes, syncproto.MaxBodyBytes)
	return fmt.Sprintf("%dm", (n+1<<20-1)>>20)
}

// WriteNginx writes the nginx configuration of cities.
func WriteNginx(w io.Writer, cities []City, opts Options) error {
	if opts.Listen == "" {
		opts.Listen = "80"
	}
	if opts.ServerName == "" {
		opts.ServerName = "_"
	}
	if opts.Title == "" {
		opts.Title = DefaultTitle
	}
	for _, v := range []string{opts.Listen, opts.ServerName, opts.Standalone} {
		if strings.ContainsAny(v, "\"'`;{}$\\ \n") {
			return fmt.Errorf("%q: quotes, braces, spaces, ; $ and \\ would break the nginx configuration", v)
		}
	}
	for _, c := range cities {
		if err := c.check(); err != nil {
			return err
		}
	}
	index, err := IndexPage(cities, opts.Title)
	if err != nil {
		return err
	}
	var dir string
	if opts.Standalone != "" {
		if dir, err = filepath.Abs(opts.Standalone); err != nil {
			return fmt.Errorf("standalone directory: %w", err)
		}
	}
	var b bytes.Buffer
	err = nginxTemplate.Execute(&b, map[string]any{
		"Cities": cities, "Listen": opts.Listen, "ServerName": opts.ServerName, "Dir": dir,
		"BodyLimit":   BodyLimit(opts.FeedLimit),
		"ReadTimeout": seconds(ProxyReadTimeout), "SlowTimeout": seconds(SlowLinkTimeout), "Keepalive": seconds(KeepaliveTimeout),
		"MaxPullWait": syncproto.MaxPullWait,
		"Index":       nginxString(index),
	})
	if err != nil {
		return fmt.Errorf("nginx configuration: %w", err)
	}
	_, err = w.Write(b.Bytes())
	return err
}

func seconds(d time.Duration) string { return fmt.Sprintf("%ds", int(d/time.Second)) }

// nginxString quotes s as an nginx string in single quotes. The page has
// no $ (city names refuse it, the template has none), which nginx would
// read as a variable.
func nginxString(s []byte) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(string(s)) + "'"
}

var nginxTemplate = template.Must(template.New("nginx").Parse(`# A province's cities behind one address: made by
#   fieldsyncd province nginx-config
# Each city is its own fieldsyncd, started with --base-path /CODE and
# --trusted-proxies naming this machine; this proxy only routes by the
# path's first segment (docs/OPERATIONS.md, "A province behind one address").
{{- if .Dir}}

# Standalone: runs without root as
#   nginx -p {{.Dir}} -c {{.Dir}}/nginx.conf -e {{.Dir}}/error.log
daemon off;
worker_processes auto;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;

events {
	# Each held pull keeps two connections (phone and city) for up to
	# {{.MaxPullWait}} s; raise with the phones (and ulimit -n).
	worker_connections 4096;
}

http {
access_log {{.Dir}}/access.log;
client_body_temp_path {{.Dir}}/client_body;
proxy_temp_path {{.Dir}}/proxy;
fastcgi_temp_path {{.Dir}}/fastcgi;
uwsgi_temp_path {{.Dir}}/uwsgi;
scgi_temp_path {{.Dir}}/scgi;
{{- end}}
{{range .Cities}}
# {{.Code}} {{.Name}}
upstream fieldsync_{{.Code}} {
{{- range $i, $a := .Addrs}}
	server {{$a}}{{if $i}} backup{{end}};
{{- end}}
	# Connections kept open to the city, so a request does not pay for a
	# new one.
	keepalive 32;
}
{{end}}
server {
	listen {{.Listen}};
	server_name {{.ServerName}};

	# The largest body: a feed file in a console form ({{.BodyLimit}} with
	# the form's own bytes); a photo is at most 8 MiB, a push 1 MiB.
	client_max_body_size {{.BodyLimit}};
	# Pauses a 2G link makes, in a body or in reading an answer.
	client_header_timeout 60s;
	client_body_timeout {{.SlowTimeout}};
	send_timeout {{.SlowTimeout}};
	# Longer than the SDK keeps an idle connection (55 s).
	keepalive_timeout {{.Keepalive}};
	# fieldsyncd compresses its own answers (and reads gzip bodies): they
	# pass through as they are, never compressed twice.
	gzip off;
	# Redirects are paths (/4110/console/), kept as the city wrote them.
	absolute_redirect off;
	proxy_redirect off;

	proxy_http_version 1.1;
	proxy_set_header Connection "";
	# Host as the browser sent it, port included: the console compares it
	# with the Origin of its forms.
	proxy_set_header Host $http_host;
	# The phone's address, for the city's limits per address and its
	# sign-in lockout: fieldsyncd reads it when --trusted-proxies names
	# this machine.
	proxy_set_header X-Real-IP $remote_addr;
	proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
	proxy_set_header X-Forwarded-Proto $scheme;
	# Bodies go to the city as they arrive (a photo's tus PATCH resumes
	# from what the city holds, not from what the proxy held), and
	# answers come back as they are written (a held pull answers when a
	# change comes).
	proxy_request_buffering off;
	proxy_buffering off;
	proxy_connect_timeout 5s;
	# Above the longest held pull ({{.MaxPullWait}} s).
	proxy_read_timeout {{.ReadTimeout}};
	proxy_send_timeout {{.SlowTimeout}};

	# The cities, for people who do not know which is theirs.
	location = / {
		default_type "text/html; charset=utf-8";
		add_header Cache-Control "no-cache";
		return 200 {{.Index}};
	}
	# The proxy's own health, for a load balancer in front of it.
	location = /healthz {
		default_type text/plain;
		return 200 "ok\n";
	}
{{- range .Cities}}

	# {{.Code}} {{.Name}}
	location = /{{.Code}} {
		return 301 /{{.Code}}/;
	}
	location /{{.Code}}/ {
		proxy_pass http://fieldsync_{{.Code}};
	}
{{- end}}

	location / {
		return 404;
	}
}
{{if .Dir}}}
{{end}}`))
