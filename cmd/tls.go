package cmd

import (
	"crypto/x509"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/internal/tlsconfig"
	"github.com/echoctl/echoctl/pkg/echo"
)

// setupServerTransport sets srv's TLS configuration, when an address is
// tls://, and its Unix socket mode. It returns the TLS server to reload on
// SIGHUP, or nil when there is no file to reload (no tls:// address, or a
// self-signed certificate without a client CA file), and logTLS, which
// logs the certificate served: serve calls it once the listeners are
// bound, so that a start that fails to bind logs none.
func setupServerTransport(srv *echo.Server, cfg *Config, addrs []string, logger zerolog.Logger) (reload *tlsconfig.Server, logTLS func(), err error) {
	t := cfg.Transport
	srv.UnixMode = t.UnixMode
	var tlsHosts []string
	for _, s := range addrs {
		if a, err := echo.ParseAddr(s); err == nil && a.Network == echo.NetworkTLS {
			tlsHosts = append(tlsHosts, a.Host)
		}
	}
	if tlsHosts == nil {
		warnUnusedTLS(t, logger)
		return nil, func() {}, nil
	}
	var ts *tlsconfig.Server
	if t.TLSSelfSigned {
		if hn, err := os.Hostname(); err == nil && slices.Contains(tlsHosts, "") {
			tlsHosts = append(tlsHosts, hn)
		}
		cert, err := tlsconfig.SelfSigned(tlsHosts, time.Now())
		if err != nil {
			return nil, nil, err
		}
		if ts, err = tlsconfig.SelfSignedServer(cert, t.TLSClientCA); err != nil {
			return nil, nil, err
		}
	} else {
		var err error
		if ts, err = tlsconfig.LoadServer(t.TLSCert, t.TLSKey, t.TLSClientCA); err != nil {
			return nil, nil, err
		}
	}
	logTLS = func() {
		leaf := ts.Certificate()
		if t.TLSSelfSigned {
			logger.Info().Str("logger", "main").Str("fingerprint_sha256", tlsconfig.Fingerprint(leaf)).
				Strs("hosts", tlsconfig.Hosts(leaf)).
				Msgf("TLS: self-signed certificate for %s, SHA-256 fingerprint %s",
					strings.Join(tlsconfig.Hosts(leaf), ", "), tlsconfig.Fingerprint(leaf))
		} else {
			logCertificate(logger, "TLS: serving certificate", leaf)
		}
		if ts.MutualTLS() {
			logger.Info().Str("logger", "main").Str("client_ca", t.TLSClientCA).
				Msgf("TLS: clients must present a certificate signed by a CA in %s", t.TLSClientCA)
		}
	}
	srv.TLSConfig = ts.Config()
	if t.TLSSelfSigned && t.TLSClientCA == "" {
		return nil, logTLS, nil // no file to reload
	}
	return ts, logTLS, nil
}

// warnUnusedTLS warns about serve's TLS settings when no address is
// tls://: they then do nothing, which is likely not what was meant.
func warnUnusedTLS(t TransportConfig, logger zerolog.Logger) {
	var set []string
	if t.TLSSelfSigned {
		set = append(set, keyTLSSelfSigned)
	}
	if t.TLSClientCA != "" {
		set = append(set, keyTLSClientCA)
	}
	if set != nil {
		logger.Warn().Str("logger", "main").Strs("keys", set).
			Msgf("TLS: %s set, but no --addr is tls://: ignored", strings.Join(set, " and "))
	}
}

// logCertificate logs what a certificate is (subject, expiry, SHA-256
// fingerprint) at info, or at warn when it is not valid now.
func logCertificate(logger zerolog.Logger, what string, cert *x509.Certificate) {
	if cert == nil {
		return
	}
	now := time.Now()
	e := logger.Info()
	note := ""
	switch {
	case now.After(cert.NotAfter):
		e, note = logger.Warn(), " (EXPIRED: clients will refuse it)"
	case now.Before(cert.NotBefore):
		e, note = logger.Warn(), " (NOT YET VALID: clients will refuse it)"
	}
	e.Str("logger", "main").Str("subject", cert.Subject.String()).Time("not_after", cert.NotAfter).
		Str("fingerprint_sha256", tlsconfig.Fingerprint(cert)).
		Msgf("%s %s, valid until %s%s, SHA-256 fingerprint %s", what, cert.Subject, cert.NotAfter.UTC().Format(time.DateOnly), note, tlsconfig.Fingerprint(cert))
}

// watchReload reloads ts's certificate files on every SIGHUP until the
// returned function is called. Connections already open keep their
// certificate; a reload that fails keeps the old one and is logged at warn.
// With ts nil it does nothing, and SIGHUP keeps its default action.
func watchReload(ts *tlsconfig.Server, logger zerolog.Logger) (stop func()) {
	if ts == nil {
		return func() {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-hup:
				logger.Info().Str("logger", "main").Msg("SIGHUP: reloading TLS certificate files")
				if err := ts.Reload(); err != nil {
					logger.Warn().Str("logger", "main").Err(err).Msgf("TLS reload failed, still serving the previous certificate: %v", err)
					continue
				}
				logCertificate(logger, "TLS: reloaded certificate", ts.Certificate())
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}

// setupClientTransport sets client's TLS configuration for a tls://
// address and its retries for a udp:// one.
func setupClientTransport(client *echo.Client, cfg *Config, logger zerolog.Logger) error {
	t := cfg.Transport
	client.Retries = t.Retries
	if t.Retries == 0 {
		client.Retries = -1 // echo.Client's zero means the default
	}
	a, err := echo.ParseAddr(client.Addr)
	if err != nil || a.Network != echo.NetworkTLS {
		return err
	}
	tc, err := tlsconfig.Client(tlsconfig.ClientOptions{
		CAFile: t.TLSCA, ServerName: t.TLSServerName, CertFile: t.TLSCert, KeyFile: t.TLSKey, Insecure: t.TLSInsecure,
	})
	if err != nil {
		return err
	}
	if t.TLSInsecure {
		logger.Warn().Str("logger", "echo_client").Bool("tls_insecure", true).
			Msg("TLS: NOT verifying the server's certificate (--tls-insecure): anyone on the path can read and change the echo")
	}
	client.TLSConfig = tc
	return nil
}
