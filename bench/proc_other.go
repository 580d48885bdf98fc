//go:build !unix

package bench

import "math"

// selfCPU returns 0 here: there is no getrusage.
func selfCPU() float64 { return 0 }

// RaiseFileLimit does nothing here: there is no RLIMIT_NOFILE to raise, and no limit to report.
func RaiseFileLimit() (uint64, error) { return math.MaxInt64, nil }
