package echo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// DefaultHandshakeTimeout bounds a TLS handshake when the Server's or
// Client's HandshakeTimeout is zero.
const DefaultHandshakeTimeout = 10 * time.Second

// serverTLSConfig returns s.TLSConfig for a tls:// listener, raising its
// MinVersion to TLS 1.2 (a clone is changed, never the caller's config).
func (s *Server) serverTLSConfig() (*tls.Config, error) {
	cfg := s.TLSConfig
	if cfg == nil || len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
		return nil, ErrNoTLSConfig
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg = cfg.Clone()
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg, nil
}

func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

// handshake completes the TLS handshake of a connection accepted on a
// tls:// listener, within the handshake timeout, and reports whether the
// connection may be served, and if not why it closes. A failure is one
// warn line on the connection's logger, "TLS handshake failed: REASON", at
// most once a second on each listener (tlsFailed); it closes only this
// connection. Connections that are not TLS pass at once.
func (c *goConn) handshake() (CloseReason, bool) {
	tc, ok := c.rwc.(*tls.Conn)
	if !ok {
		return 0, true
	}
	timeout := c.srv.handshakeTimeout()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		// Shutdown's deadline (stop) or Close (abort) cut it short; a
		// handshake that fails while Shutdown waits, before its deadline,
		// is a failed handshake.
		if c.stopping.Load() || c.srv.shuttingDown() && errors.Is(err, net.ErrClosed) {
			c.log(zerolog.InfoLevel).Str("reason", "shutdown").Msg("closing")
			return CloseShutdown, false
		}
		reason := CloseError
		if errors.Is(err, syscall.ECONNRESET) {
			reason = CloseReset
		}
		if c.balancerCheck() && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			// A health check that ends after its header.
			if e := c.log(zerolog.DebugLevel); e != nil {
				e.Err(err).Msg("TLS handshake failed: " + handshakeReason(err, timeout))
			}
		} else {
			c.tlsFailed(err, timeout)
		}
		// Make sure the alert reaches the client. A TLS 1.3 client
		// considers its handshake done before the server has checked
		// its certificate, and may already be sending data: closing
		// with that data unread would send a reset, which can destroy
		// the alert in the client's receive queue, leaving it with
		// "broken pipe" instead of "certificate required".
		lingerClose(tc.NetConn(), time.Now().Add(drainLinger))
		return reason, false
	}
	if e := c.log(zerolog.DebugLevel); e != nil {
		st := tc.ConnectionState()
		e = e.Str("tls_version", tls.VersionName(st.Version)).Str("cipher", tls.CipherSuiteName(st.CipherSuite))
		msg := fmt.Sprintf("TLS handshake complete: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
		if len(st.PeerCertificates) > 0 {
			subject := st.PeerCertificates[0].Subject.String()
			e = e.Str("client_cert", subject)
			msg += ", client certificate " + subject
		}
		e.Msg(msg)
	}
	return 0, true
}

// tlsFailed logs a failed handshake at warn, at most once a second for
// each kind of failure on the connection's listener; the line counts
// those held back since the last: a scanner or a flood of plaintext
// clients must not fill the log.
func (c *goConn) tlsFailed(err error, timeout time.Duration) {
	e := c.log(zerolog.WarnLevel)
	if e == nil {
		return
	}
	lconf, kind := c.lconf, handshakeKindOf(err)
	ok, suppressed := lconf.tlsWarns[kind].allow(time.Now(), time.Second, func(n int) {
		c.srv.Logger.Warn().Str("logger", "main").Str("listener", lconf.name).Str("reason", handshakeKindNames[kind]).Int("failed_unlogged", n).
			Msgf("%d more TLS handshakes failed (%s) since the last report", n, handshakeKindNames[kind])
	})
	if !ok {
		e.Discard()
		return
	}
	msg := "TLS handshake failed: " + handshakeReason(err, timeout)
	if suppressed > 0 {
		msg += fmt.Sprintf(" (%d more failed since the last report)", suppressed)
	}
	e.Err(err).Int("failed_unlogged", suppressed).Msg(msg)
}

// tlsWriteFailed reports whether err, which ended the echo, is a failed
// write back on a TLS connection, which can then send nothing more, not
// even close_notify, in time.
func (c *goConn) tlsWriteFailed(err error) bool {
	var op *opError
	return c.isTLS() && errors.As(err, &op) && op.op == "write"
}

// A handshakeKind sorts failed handshakes for the log's rate limit.
type handshakeKind uint8

const (
	handshakeTimeout       handshakeKind = iota // no handshake in time
	handshakeClosed                             // the client left
	handshakeNotTLS                             // the client does not speak TLS
	handshakeRemote                             // the client refused us (an alert)
	handshakeNoClientCert                       // mutual TLS: no certificate
	handshakeBadClientCert                      // mutual TLS: one that does not verify
	handshakeOther
	handshakeKinds
)

var handshakeKindNames = [handshakeKinds]string{"timeout", "closed", "not TLS", "refused by the client", "no client certificate", "client certificate not verified", "other"}

// handshakeKindOf sorts err, a failed handshake's error.
func handshakeKindOf(err error) handshakeKind {
	var rh tls.RecordHeaderError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return handshakeTimeout
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return handshakeClosed
	case errors.As(err, &rh):
		return handshakeNotTLS
	}
	switch msg := err.Error(); {
	case strings.Contains(msg, "remote error"):
		return handshakeRemote
	case strings.Contains(msg, "didn't provide a certificate"):
		return handshakeNoClientCert
	case strings.Contains(msg, "certificate"):
		return handshakeBadClientCert
	}
	return handshakeOther
}

// handshakeReason says in a few words why a handshake failed.
func handshakeReason(err error, timeout time.Duration) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "no handshake within " + FormatDuration(timeout)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "the client closed the connection during the handshake"
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return "the client does not speak TLS (" + rh.Msg + ")"
	}
	return rootCause(err).Error()
}

// clientTLSConfig returns the configuration a Client uses to connect to
// host: c.TLSConfig (or an empty one) with ServerName defaulting to host
// and MinVersion raised to TLS 1.2. A clone is changed, never the caller's
// config.
func (c *Client) clientTLSConfig(host string) *tls.Config {
	var cfg *tls.Config
	if c.TLSConfig == nil {
		cfg = &tls.Config{}
	} else {
		cfg = c.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
		if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() != "" {
			cfg.ServerName = ip.WithZone("").String() // a certificate names ::1, never ::1%lo
		}
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// handshake runs the client side of the TLS handshake on conn, a TCP
// connection to host, and returns the *tls.Conn. The handshake is bounded
// by ctx (and so by Client.Timeout). On failure it closes conn and returns
// a *DialError.
func (c *Client) handshake(ctx context.Context, conn net.Conn, addr, host string) (net.Conn, error) {
	tc := tls.Client(conn, c.clientTLSConfig(host))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		if errors.Is(err, io.EOF) { // a bare "EOF" says nothing of when
			err = fmt.Errorf("the server closed the connection during the TLS handshake: %w", err)
		}
		return nil, &DialError{Addr: addr, Err: err}
	}
	if e := c.log(zerolog.DebugLevel); e != nil {
		st := tc.ConnectionState()
		msg := fmt.Sprintf("TLS handshake complete: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
		if len(st.PeerCertificates) > 0 {
			msg += ", server certificate " + st.PeerCertificates[0].Subject.String()
		}
		e.Str("tls_version", tls.VersionName(st.Version)).Str("cipher", tls.CipherSuiteName(st.CipherSuite)).Msg(msg)
	}
	return tc, nil
}
