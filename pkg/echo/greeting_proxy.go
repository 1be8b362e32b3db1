package echo

// replaced by proxy.go when PROXY protocol lands

// via returns the balancer a PROXY header came through; empty without
// PROXY protocol.
func (c *conn) via() string { return "" }

// proxySummary returns what c's PROXY header said; "none" without PROXY
// protocol.
func (c *conn) proxySummary() string { return "none" }
