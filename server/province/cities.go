package province

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
)

// City is one city of the province: its unit code (the base path its
// fieldsyncd serves under is /Code), its name, and the addresses of its
// fieldsyncd processes, the first the one that serves and the rest
// stand-ins the proxy turns to when it is down.
type City struct {
	Code  string
	Name  string
	Addrs []string
}

// BasePath is the path the city's fieldsyncd serves under.
func (c City) BasePath() string { return "/" + c.Code }

// ReadCities reads a cities file: one city a line, "CODE NAME ADDR
// [ADDR...]" separated by spaces or tabs, such as
//
//	4110 许昌市 10.0.1.11:8080
//
// Blank lines and lines starting with # are skipped. CODE is the city's
// 4-digit unit code, NAME has no spaces, each ADDR is HOST:PORT. An error
// names the line.
func ReadCities(r io.Reader) ([]City, error) {
	var cities []City
	seen := map[string]int{}
	lines := bufio.NewScanner(r)
	for n := 1; lines.Scan(); n++ {
		line := strings.TrimSpace(lines.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("line %d: want CODE NAME ADDR [ADDR...], such as 4110 许昌市 10.0.1.11:8080", n)
		}
		c := City{Code: f[0], Name: f[1], Addrs: f[2:]}
		if err := c.check(); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if first, dup := seen[c.Code]; dup {
			return nil, fmt.Errorf("line %d: city %s is already on line %d", n, c.Code, first)
		}
		seen[c.Code] = n
		cities = append(cities, c)
	}
	if err := lines.Err(); err != nil {
		return nil, fmt.Errorf("read cities: %w", err)
	}
	if len(cities) == 0 {
		return nil, fmt.Errorf("no city: want a line CODE NAME ADDR, such as 4110 许昌市 10.0.1.11:8080")
	}
	return cities, nil
}

// check refuses what would not be a city code, or what could break out of
// the nginx configuration or the index page it is written into: a name
// or address with quotes, braces, semicolons, $ or backslashes.
func (c City) check() error {
	if len(c.Code) != 4 || strings.Trim(c.Code, "0123456789") != "" {
		return fmt.Errorf("city code %q: want the city's 4-digit unit code, such as 4110", c.Code)
	}
	if strings.ContainsAny(c.Name, "\"'`;{}$\\<>&") {
		return fmt.Errorf("city name %q: quotes, braces, ; $ \\ < > & are not taken", c.Name)
	}
	for _, a := range c.Addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" || strings.ContainsAny(a, "\"'`;{}$\\ ") {
			return fmt.Errorf("address %q of city %s: want HOST:PORT, such as 10.0.1.11:8080", a, c.Code)
		}
	}
	return nil
}
