//go:build !linux

package echo

import "syscall"

// Connections are parked while idle only on Linux (park_linux.go).

type parker struct{}

type connPark struct{}

func (p *parker) close()                  {}
func (c *conn) mayPark() bool             { return false }
func (c *conn) countRead()                {}
func (c *conn) parkRequested(error) bool  { return false }
func (c *conn) park(syscall.RawConn) bool { return false }
func (c *conn) unpark()                   {}
func (c *conn) forgetParked()             {}
