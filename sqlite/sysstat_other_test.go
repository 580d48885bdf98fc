//go:build !linux

package sqlite

import "time"

// processCPU and processWrites are only measured on Linux.
func processCPU() time.Duration { return 0 }
func processWrites() int64      { return 0 }
