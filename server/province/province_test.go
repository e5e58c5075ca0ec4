package province_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/province"
)

const citiesFile = `# Henan, two cities
4110 许昌市 10.0.1.11:8080

4101	郑州市	10.0.1.12:8080 10.0.1.13:8080
`

func TestReadCities(t *testing.T) {
	cities, err := province.ReadCities(strings.NewReader(citiesFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(cities) != 2 || cities[0].Code != "4110" || cities[0].Name != "许昌市" || cities[1].BasePath() != "/4101" ||
		len(cities[1].Addrs) != 2 || cities[1].Addrs[1] != "10.0.1.13:8080" {
		t.Fatalf("cities %+v", cities)
	}
}

func TestReadCities_Errors(t *testing.T) {
	for name, tc := range map[string]struct{ file, want string }{
		"Empty":      {"# none\n", "no city"},
		"NoAddress":  {"4110 许昌市\n", "line 1: want CODE NAME ADDR"},
		"BadCode":    {"41100 许昌市 10.0.1.11:8080\n", "4-digit unit code"},
		"BadAddress": {"4110 许昌市 10.0.1.11\n", "HOST:PORT"},
		"Duplicate":  {"4110 许昌市 a:1\n4110 许昌 b:1\n", "line 2: city 4110 is already on line 1"},
		"Injection":  {"4110 许昌市;} 10.0.1.11:8080\n", "are not taken"},
		"Variable":   {"4110 $host 10.0.1.11:8080\n", "are not taken"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := province.ReadCities(strings.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestWriteNginx checks the settings this traffic needs are in the
// configuration, and, where nginx is installed, that nginx takes it.
func TestWriteNginx(t *testing.T) {
	cities, err := province.ReadCities(strings.NewReader(citiesFile))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var b bytes.Buffer
	if err := province.WriteNginx(&b, cities, province.Options{Listen: "127.0.0.1:18080", Standalone: dir}); err != nil {
		t.Fatal(err)
	}
	conf := b.String()
	for _, want := range []string{
		"upstream fieldsync_4110 {\n\tserver 10.0.1.11:8080;",
		"server 10.0.1.13:8080 backup;",
		"location /4110/ {\n\t\tproxy_pass http://fieldsync_4110;\n\t}",
		"location /4101/ {\n\t\tproxy_pass http://fieldsync_4101;\n\t}",
		"client_max_body_size 17m;",
		"proxy_request_buffering off;",
		"proxy_buffering off;",
		"proxy_read_timeout 90s;",
		"gzip off;",
		"proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
		"proxy_set_header X-Real-IP $remote_addr;",
		"daemon off;",
		"pid " + dir + "/nginx.pid;",
		`<a href="/4110/console/">许昌市</a>`,
		`<a href="/4101/console/">郑州市</a>`,
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("the configuration lacks %q", want)
		}
	}
	if strings.Count(conf, "{") != strings.Count(conf, "}") {
		t.Errorf("unbalanced braces:\n%s", conf)
	}
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed: the configuration is not checked by nginx -t")
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

func TestBodyLimit(t *testing.T) {
	for limit, want := range map[int64]string{0: "17m", 1 << 20: "8m", 32 << 20: "33m", 32<<20 + 1: "34m"} {
		if got := province.BodyLimit(limit); got != want {
			t.Errorf("BodyLimit(%d) = %s, want %s", limit, got, want)
		}
	}
}
