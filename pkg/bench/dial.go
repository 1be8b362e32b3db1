package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"github.com/echoctl/echoctl/pkg/echo"
)

// clientTLS returns the TLS configuration of a run's connections to a
// tls:// address a, from cfg: a copy of cfg.TLSConfig that names the
// server (the host of the address, localhost for none) so that the run
// may dial the IP address it first reached and still verify the name,
// with a session cache shared by every connection if cfg.TLSResume, and
// none otherwise. Nil for any other address.
func clientTLS(cfg Config, a echo.Addr) *tls.Config {
	if a.Network != echo.NetworkTLS {
		return nil
	}
	tc := &tls.Config{}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = a.Host
		if tc.ServerName == "" {
			tc.ServerName = "localhost"
		}
	}
	tc.ClientSessionCache = nil
	if cfg.TLSResume {
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	return tc
}

// dial makes one connection of the run, in every mode and over every
// network, with echo.Client: to addr (see runner.addr), writing the PROXY
// header first if the run has one, and completing the TLS handshake of a
// tls:// address (countTLS counts it). Over UDP it is a connected socket.
func (r *runner) dial(ctx context.Context, addr string) (net.Conn, error) {
	// With a greeting, prelude reads before the load writes: the PROXY
	// header then goes alone, before that read (echo.Client.Proxy).
	client := echo.Client{Addr: addr, TLSConfig: r.tls, Proxy: r.cfg.Proxy, Greeting: r.cfg.Greeting, Dialer: r.dialer}
	c, err := client.DialContext(ctx)
	if err != nil {
		// The run's errors name the address already: keep the cause as
		// the net package words it ("dial tcp ...: connect: connection
		// refused"), as before bench dialled through echo.Client.
		var de *echo.DialError
		if errors.As(err, &de) {
			err = de.Err
		}
		return nil, err
	}
	return c, nil
}

// countTLS counts the TLS handshake of c, a connection of the run
// (tracked): a connection made as the run ends, and closed uncounted,
// counts no handshake either.
func (r *runner) countTLS(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		r.handshakes.Add(1)
		if tc.ConnectionState().DidResume {
			r.resumed.Add(1)
		}
	}
}

// reached is the address to dial once a connection to c's peer has
// opened: the IP address it reached, in the form echo.Client reads, so
// that later connects skip name resolution; a Unix socket's path stays
// as it is.
func (r *runner) reached(c net.Conn) string {
	switch r.network.Network {
	case echo.NetworkUnix:
		return r.cfg.Addr
	case echo.NetworkTCP:
		return c.RemoteAddr().String()
	default:
		return r.network.Network + "://" + c.RemoteAddr().String()
	}
}

// tlsStats counts the run's TLS handshakes; nil unless the address is
// tls://.
func (r *runner) tlsStats() *TLSStats {
	if r.network.Network != echo.NetworkTLS {
		return nil
	}
	return &TLSStats{Handshakes: r.handshakes.Load(), Resumed: r.resumed.Load()}
}
