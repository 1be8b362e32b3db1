package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The other transports, served and loaded by echoctl alone: the same
// modes over TLS (full handshakes, and resumed ones), a Unix socket and
// UDP, beside echoctl over TCP, for what each transport costs. No target
// names them; the tables and the HTML page show them.
const (
	tlsID       = "echoctl-tls"
	tlsResumeID = "echoctl-tls-resume"
	unixID      = "echoctl-unix"
	udpID       = "echoctl-udp"
)

// transportServers are echoctl serving tls://, unix:// and udp://, each
// loaded by echoctl bench over the same transport.
func transportServers(o *options) []*server {
	tlsAddr := func(port int) string { return "tls://" + addr(port) }
	return []*server{
		{
			id: tlsID, name: "echoctl over TLS",
			about: "`echoctl serve --addr tls://127.0.0.1:PORT --tls-self-signed`, loaded by `echoctl bench --addr tls://... --tls-insecure`: every connection a full TLS 1.3 handshake",
			argv: func(port int) []string {
				return []string{o.echoctl, "serve", "--addr", tlsAddr(port), "--tls-self-signed"}
			},
			target: tlsAddr,
			load:   func(int) []string { return []string{"--tls-insecure"} },
			only:   map[string]bool{"pp128-c50": true, "stream-c1": true, "connrate-c8": true},
		},
		{
			id: tlsResumeID, name: "echoctl over TLS, resumed",
			about: "the same, loaded with `--tls-resume`: connections resume the TLS session from a cache the load generator's connections share",
			argv: func(port int) []string {
				return []string{o.echoctl, "serve", "--addr", tlsAddr(port), "--tls-self-signed"}
			},
			target: tlsAddr,
			load:   func(int) []string { return []string{"--tls-insecure", "--tls-resume"} },
			only:   map[string]bool{"connrate-c8": true},
		},
		{
			id: unixID, name: "echoctl over a Unix socket",
			about: "`echoctl serve --addr unix:///TMP/echoctl-benchrun-PORT.sock`, loaded by `echoctl bench --addr unix://...`",
			argv: func(port int) []string {
				return []string{o.echoctl, "serve", "--addr", "unix://" + unixPath(port)}
			},
			target: func(port int) string { return "unix://" + unixPath(port) },
			ready:  waitUnix,
			only:   map[string]bool{"pp128-c50": true, "stream-c1": true, "connrate-c8": true, idleID: true},
		},
		{
			id: udpID, name: "echoctl over UDP",
			about: "`echoctl serve --addr udp://127.0.0.1:PORT --udp-rate-per-source 0` (a load generator sends from one address), loaded by `echoctl bench --addr udp://...` at the mode's fixed rate: datagrams, their loss, reordering and jitter in the JSON",
			argv: func(port int) []string {
				return []string{o.echoctl, "serve", "--addr", "udp://" + addr(port), "--udp-rate-per-source", "0"}
			},
			target: func(port int) string { return "udp://" + addr(port) },
			ready:  waitUDP,
			only:   map[string]bool{"pp128-c50-r5k": true},
		},
	}
}

// unixPath is the socket the Unix server of port listens on.
func unixPath(port int) string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("echoctl-benchrun-%d.sock", port))
}

// waitUnix waits until the Unix socket of port accepts a connection.
func waitUnix(ctx context.Context, port int, exited <-chan error) error {
	return waitFor(ctx, exited, "unix://"+unixPath(port), func() error {
		c, err := net.DialTimeout("unix", unixPath(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// waitUDP waits until a datagram to port comes back.
func waitUDP(ctx context.Context, port int, exited <-chan error) error {
	return waitFor(ctx, exited, "udp://"+addr(port), func() error {
		c, err := net.Dial("udp", addr(port))
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Write([]byte("ready?")); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 16))
		return err
	})
}

// waitFor retries probe every 20 ms for up to 5 s, or until the server
// exits or ctx ends.
func waitFor(ctx context.Context, exited <-chan error, what string, probe func() error) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := probe()
		if err == nil {
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("the server exited before serving %s: %v", what, werr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing served %s after 5s: %v", what, err)
		}
	}
}
