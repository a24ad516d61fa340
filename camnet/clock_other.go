//go:build !linux

package camnet

import "errors"

// ClockSynchronised is only implemented on Linux.
func ClockSynchronised() (bool, error) {
	return false, errors.New("clock state not available on this OS")
}
