//go:build !linux

package park

import (
	"errors"
	"syscall"
)

// Supported reports whether Waiters work here.
const Supported = false

// Waiter is not available here: Arm always fails.
type Waiter struct{}

// NewWaiter returns a Waiter whose Arm always fails.
func NewWaiter(rc syscall.RawConn, fn func()) *Waiter { return &Waiter{} }

// Arm fails: there is no poller here.
func (w *Waiter) Arm() error { return errors.ErrUnsupported }

// Cancel does nothing.
func (w *Waiter) Cancel() {}

// Armed returns 0.
func Armed() int { return 0 }

// FailArms does nothing: Arm always fails here.
func FailArms(err error) (restore func()) { return func() {} }
