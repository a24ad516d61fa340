//go:build unix

package connlimit

import "syscall"

// OpenFileLimit returns the process's current open-file limit
// (RLIMIT_NOFILE, soft).
func OpenFileLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	return uint64(r.Cur), nil
}
