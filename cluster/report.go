package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxReportBytes bounds one node's report document (etcd refuses requests
// over 1.5 MiB by default).
const maxReportBytes = 1 << 20

var reportKindRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Report is one kind of per-node document shared through etcd: each node
// publishes its own (the live sessions, the egress report, viewer counts)
// under its lease, so a node's document vanishes with the node, and any
// node reads all of them. Source is polled every Every (default 2 s) and
// written only when its JSON changed (or after Refresh, default 30 s, for
// fields such as byte counters that change all the time: set Significant
// to say which changes are worth a write at once). Live reports are
// mirrored by every node's watch (cheap to read, for things read often,
// such as viewer counts); the others are read from etcd when asked (for
// admin lists). Component: exported fields, Initialize, Close.
type Report[T any] struct {
	Node *Node
	// Kind names the report in etcd keys ([a-z][a-z0-9_-]{0,31}).
	Kind string
	// Source returns this node's current document.
	Source func() T
	// Significant reports whether a change from old to new must be written
	// now rather than at the next Refresh (nil = every change).
	Significant func(old, new T) bool
	Every       time.Duration
	Refresh     time.Duration
	Live        bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// NodeReport is one node's document.
type NodeReport[T any] struct {
	Node string
	Doc  T
}

// Initialize starts publishing; the node must be initialized.
func (r *Report[T]) Initialize() error {
	if r.Node == nil || r.Node.cli == nil || r.Source == nil {
		return errors.New("cluster: report needs an initialized Node and a Source")
	}
	if !reportKindRe.MatchString(r.Kind) {
		return fmt.Errorf("cluster: report kind %q must match %s", r.Kind, reportKindRe)
	}
	if r.Every <= 0 {
		r.Every = 2 * time.Second
	}
	if r.Refresh <= 0 {
		r.Refresh = 30 * time.Second
	}
	r.ctx, r.cancel = context.WithCancel(r.Node.ctx)
	r.done = make(chan struct{})
	r.Node.wg.Add(1) // Node.Close waits for it too
	go r.run()
	return nil
}

// Close stops publishing (the document stays until the node leaves).
func (r *Report[T]) Close() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
}

func (r *Report[T]) key() string { return r.Node.k.report(r.Kind, r.Live) + r.Node.Self.ID }

func (r *Report[T]) run() {
	defer r.Node.wg.Done()
	defer close(r.done)
	t := time.NewTicker(r.Every)
	defer t.Stop()
	var (
		lastJSON  []byte
		lastDoc   T
		lastLease clientv3.LeaseID
		lastAt    time.Time
	)
	for {
		n := r.Node
		n.mu.Lock()
		lease, degraded := n.lease, n.health.Degraded
		n.mu.Unlock()
		if lease != 0 && !degraded {
			doc := r.Source()
			b, err := json.Marshal(doc)
			switch {
			case err != nil:
				n.Logger.Warn("cluster: report cannot be encoded", "kind", r.Kind, "err", err)
			case len(b) > maxReportBytes:
				n.Logger.Warn("cluster: report too large to share", "kind", r.Kind, "bytes", len(b))
			default:
				changed := !bytes.Equal(b, lastJSON)
				now := changed && (lastJSON == nil || r.Significant == nil || r.Significant(lastDoc, doc))
				if lease != lastLease || now || (changed && time.Since(lastAt) >= r.Refresh) {
					if r.put(lease, b) == nil {
						lastJSON, lastDoc, lastLease, lastAt = b, doc, lease, time.Now()
					}
				}
			}
		}
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Report[T]) put(lease clientv3.LeaseID, b []byte) error {
	n := r.Node
	ctx, cancel := context.WithTimeout(r.ctx, n.LeaseTTL/3)
	defer cancel()
	_, err := n.cli.Put(ctx, r.key(), string(b), clientv3.WithLease(lease))
	n.Metrics.Writes.WithLabelValues("report").Inc()
	return err
}

// Read returns every live node's document, sorted by node id. Live
// reports come from the node's mirror (possibly stale while degraded, as
// Health says); the others from etcd, and an error when it is unreachable
// (callers then show this node's own, from Source, and say so).
func (r *Report[T]) Read(ctx context.Context) ([]NodeReport[T], error) {
	var raw []NodeReport[[]byte]
	if r.Live {
		dir := liveReports + r.Kind + "/"
		r.Node.m.view(dir, func(d map[string]*mirrorEntry) {
			for node, e := range d {
				raw = append(raw, NodeReport[[]byte]{Node: node, Doc: e.value.([]byte)})
			}
		})
	} else {
		resp, err := r.Node.cli.Get(ctx, r.Node.k.report(r.Kind, false), clientv3.WithPrefix())
		if err != nil {
			return nil, err
		}
		for _, kv := range resp.Kvs {
			_, node, ok := r.Node.k.split(string(kv.Key))
			if ok && len(kv.Value) <= maxReportBytes {
				raw = append(raw, NodeReport[[]byte]{Node: node, Doc: kv.Value})
			}
		}
	}
	out := make([]NodeReport[T], 0, len(raw))
	for _, x := range raw {
		var doc T
		if json.Unmarshal(x.Doc, &doc) != nil {
			continue // a malformed document (another version?) is skipped
		}
		out = append(out, NodeReport[T]{Node: x.Node, Doc: doc})
	}
	slices.SortFunc(out, func(a, b NodeReport[T]) int { return compareStrings(a.Node, b.Node) })
	return out, nil
}
