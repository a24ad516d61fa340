//go:build !unix

package connlimit

import "errors"

// OpenFileLimit is unknown off Unix.
func OpenFileLimit() (uint64, error) { return 0, errors.New("open-file limit unknown on this system") }
