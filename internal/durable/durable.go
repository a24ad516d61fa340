// Package durable holds the file-system step every crash-safe writer in
// cordon shares: making a directory entry (a new or renamed file) durable.
// It lives in internal/ because auth, auth/audit and record all need it and
// none of them owns it.
package durable

import "os"

// SyncDir fsyncs dir so that entries created, renamed or removed in it
// survive a crash. Best effort: a directory that cannot be opened or synced
// (some file systems refuse) is left as it is; the file's own fsync has
// already made its bytes durable.
func SyncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
