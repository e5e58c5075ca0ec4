// Package metrics counts what fieldsyncd does, for Prometheus: HTTP requests
// by route pattern, pushed ops by type and outcome, group commits, the
// store's size, active devices and authentication failures.
//
// A Metrics owns a private registry rather than the process-wide default, so
// two servers in one test process do not share counts, and nothing a library
// registers on its own reaches /metrics. Every method is safe on a nil
// *Metrics and then does nothing: callers that run without metrics (tests,
// tools) need no checks.
//
// No label ever holds a username, a user or device id, a warning id or a
// token: labels take only route patterns, methods, statuses, op types,
// outcomes, error codes and fixed reasons. Active devices are counted from
// keyed hashes of device ids, kept in memory for a day at most.
//
// docs/METRICS.md lists every metric.
package metrics
