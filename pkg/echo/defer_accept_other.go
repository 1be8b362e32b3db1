//go:build !linux

package echo

// deferAcceptAvailable is whether this system has TCP_DEFER_ACCEPT.
const deferAcceptAvailable = false

// setDeferAccept is never called where TCP_DEFER_ACCEPT is missing.
func setDeferAccept(uintptr, bool) error { return nil }
