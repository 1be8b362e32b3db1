package echo

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// proxyConn is a Client's connection with a PROXY header to send first
// (Client.Proxy). The header goes with the first bytes written, in one
// system call (writeFirst), as HAProxy sends its header with the
// client's first data, so that the backend reads both at once. A read,
// CloseWrite, Close or SyscallConn that comes before any write sends the
// header alone first: a client that reads a greeting before it writes, or
// one that closes without writing, still sends it, and whoever takes the
// raw connection takes it with the header sent.
type proxyConn struct {
	net.Conn
	sent   atomic.Bool // the header is written (or failed to be)
	mu     sync.Mutex  // held while the header is written
	header []byte      // nil once written
}

// Write writes p, after the header if it is not written yet.
func (c *proxyConn) Write(p []byte) (int, error) {
	if n, first, err := c.writeFirst(p); first {
		return n, err
	}
	return c.Conn.Write(p)
}

// flush writes the header alone, if it is not written yet.
func (c *proxyConn) flush() error {
	_, _, err := c.writeFirst(nil)
	return err
}

// proxyCopyMax is the most bytes of a first write that proxyConn copies
// after its header to write both with one write(2); a longer one goes
// with the header in one writev(2), which costs more for a few bytes.
const proxyCopyMax = 16 << 10

// writeFirst writes the header and p after it in one system call, if the
// header is not written yet (first): n counts p's bytes written.
func (c *proxyConn) writeFirst(p []byte) (n int, first bool, err error) {
	if c.sent.Load() {
		return 0, false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.header
	if h == nil { // written meanwhile
		return 0, false, nil
	}
	c.header = nil
	// Set once the header is out: a concurrent write waits for the lock
	// until then, rather than going first.
	defer c.sent.Store(true)
	var m int
	if len(p) <= proxyCopyMax {
		m, err = c.Conn.Write(append(h[:len(h):len(h)], p...))
	} else {
		bufs := net.Buffers{h, p}
		var m64 int64
		m64, err = bufs.WriteTo(c.Conn)
		m = int(m64)
	}
	return max(m-len(h), 0), true, err
}

// Read reads from the connection, after writing the header if no write
// has: the peer expects it before it sends anything.
func (c *proxyConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// CloseWrite sends the header if no write has, then half-closes the
// connection.
func (c *proxyConn) CloseWrite() error {
	if err := c.flush(); err != nil {
		return err
	}
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return &net.OpError{Op: "close", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errors.ErrUnsupported}
	}
	return cw.CloseWrite()
}

// Close sends the header if no write has (as the kernel sends what a
// socket holds when it closes), then closes the connection.
func (c *proxyConn) Close() error {
	c.flush()
	return c.Conn.Close()
}

// SyscallConn returns the raw connection below, once the header is
// written: reads and writes on it bypass proxyConn.
func (c *proxyConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	if err := c.flush(); err != nil {
		return nil, err
	}
	return sc.SyscallConn()
}
