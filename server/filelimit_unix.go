//go:build unix

package server

import "syscall"

// openFileLimit returns the process's open-file limit (Go raises the soft limit to the hard one
// at start), or 0 if it is unknown or unlimited (RLIM_INFINITY).
func openFileLimit() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 0
	}
	return int(lim.Cur)
}
