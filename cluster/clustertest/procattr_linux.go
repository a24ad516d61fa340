package clustertest

import "syscall"

// procAttr makes an etcd member die with the test process that started
// it, even when that process is killed (a test timeout), so no member is
// left behind holding ports and a data directory.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
