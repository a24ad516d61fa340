package audit

import (
	"fmt"
	"sync"
	"testing"

	"cordon/internal/testtool"
	"cordon/internal/testtool/rsyslog"
)

// collector is a real rsyslogd on loopback (internal/testtool/rsyslog),
// started once for the package by the first test that needs it; TestMain
// stops it. Tests tell their messages apart by node.
type collector = rsyslog.Collector

var (
	rsys     *collector
	rsysErr  error
	rsysOnce sync.Once
)

// needCollector returns the package's rsyslogd, or skips (fails in CI).
func needCollector(t *testing.T) *collector {
	t.Helper()
	rsysOnce.Do(func() {
		c, err := rsyslog.Start()
		if err != nil {
			rsysErr = err
			return
		}
		rsys = c
	})
	if rsys == nil {
		testtool.Missing(t, fmt.Sprintf("no rsyslog collector: %v", rsysErr))
	}
	return rsys
}
