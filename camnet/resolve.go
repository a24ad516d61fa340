package camnet

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultResolveTimeout bounds ResolveHosts as a whole.
const DefaultResolveTimeout = 5 * time.Second

// Resolver turns camera URL hosts into the source addresses the sinkhole
// attributes queries by. The zero value uses the system resolver.
type Resolver struct {
	// Lookup resolves a host name; nil means net.DefaultResolver.LookupNetIP.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// Timeout bounds the whole resolution; 0 = DefaultResolveTimeout.
	Timeout time.Duration
	// Logger for failures and ambiguities; nil discards.
	Logger *slog.Logger
}

// ResolveHosts resolves camera hosts (camera id -> URL host, optionally with
// a port or in [brackets]) with the system resolver and a 5 s timeout,
// logging failures. See Resolver.ResolveHosts.
func ResolveHosts(ctx context.Context, logger *slog.Logger, hosts map[string]string) map[netip.Addr]string {
	return Resolver{Logger: logger}.ResolveHosts(ctx, hosts)
}

// ResolveHosts maps each address of each camera's host to its camera id.
// IP literals need no lookup. Hosts that fail to resolve are logged and
// left out (their queries then count as "unknown"). When several cameras
// share an address (channels of one encoder or NVR), the address is
// attributed to the lowest camera id and a warning is logged.
func (r Resolver) ResolveHosts(ctx context.Context, hosts map[string]string) map[netip.Addr]string {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lookup := r.Lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultResolveTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	type result struct {
		id    string
		addrs []netip.Addr
	}
	results := make(chan result, len(hosts))
	var wg sync.WaitGroup
	for id, host := range hosts {
		h := bareHost(host)
		if a, err := netip.ParseAddr(h); err == nil {
			results <- result{id, []netip.Addr{a.Unmap()}}
			continue
		}
		if h == "" {
			log.Warn("camera has no host to attribute DNS queries to", "camera", id)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			addrs, err := lookup(ctx, h)
			if err != nil || len(addrs) == 0 {
				log.Warn("could not resolve camera host; its DNS queries will count as unknown",
					"camera", id, "host", h, "err", err)
				return
			}
			results <- result{id, addrs}
		}()
	}
	wg.Wait()
	close(results)

	owners := map[netip.Addr][]string{}
	for res := range results {
		for _, a := range res.addrs {
			a = a.Unmap()
			owners[a] = append(owners[a], res.id)
		}
	}
	out := make(map[netip.Addr]string, len(owners))
	for a, ids := range owners {
		sort.Strings(ids)
		out[a] = ids[0]
		if len(ids) > 1 {
			log.Warn("cameras share an address; DNS queries from it are attributed to the first",
				"addr", a.String(), "cameras", strings.Join(ids, ","), "attributed_to", ids[0])
		}
	}
	return out
}

// bareHost strips a port and IPv6 brackets from a URL host.
func bareHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}
