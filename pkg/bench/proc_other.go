//go:build !linux

package bench

import "time"

// ProcessCPU returns the CPU time process pid has used; it needs Linux's
// /proc and returns ErrUnsupported elsewhere.
func ProcessCPU(pid int) (time.Duration, error) { return 0, ErrUnsupported }

// ProcessSystemCPU returns the part of ProcessCPU spent in the kernel; it
// needs Linux's /proc and returns ErrUnsupported elsewhere.
func ProcessSystemCPU(pid int) (time.Duration, error) { return 0, ErrUnsupported }

// ProcessRSS returns the resident memory of process pid; it needs Linux's
// /proc and returns ErrUnsupported elsewhere.
func ProcessRSS(pid int) (int64, error) { return 0, ErrUnsupported }
