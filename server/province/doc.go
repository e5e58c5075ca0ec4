// Package province makes what a province's reverse proxy needs to put its
// cities' fieldsyncd processes behind one address: the nginx
// configuration (one upstream per city, /CODE/ proxied to it with the
// settings this traffic needs) and the index page at / that lists the
// cities, each leading to its console.
//
// A province is not a distributed store: the unit tree partitions by
// city, no warning, user or device spans two, so each city is its own
// fieldsyncd (served with --base-path /CODE) with its own store, keys and
// backups, and the proxy only routes by the path's first segment.
// docs/OPERATIONS.md ("A province behind one address") says how to run one.
package province
