package cmd

import (
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/internal/tlsconfig"
	"github.com/echoctl/echoctl/pkg/echo"
)

// serverCertificate returns serve's TLS certificate when an address is
// tls://: the files of t, or an in-memory self-signed certificate for
// the hosts of the tls:// addresses. Without a tls:// address it returns
// nil.
func serverCertificate(t TransportConfig, addrs []string, logger zerolog.Logger) (*tlsconfig.Server, error) {
	var tlsHosts []string
	for _, s := range addrs {
		if a, err := parseServeAddr(s); err == nil && a.Network == echo.NetworkTLS {
			host := a.Host
			if ip, err := netip.ParseAddr(host); err == nil {
				host = ip.WithZone("").String() // a certificate names ::1, never ::1%lo
				if ip.IsUnspecified() {
					host = "" // 0.0.0.0 and [::] are every interface, as an empty host
				}
			}
			tlsHosts = append(tlsHosts, host)
		}
	}
	if tlsHosts == nil {
		return nil, nil // TLS settings unused: warnUnused
	}
	if !t.TLSSelfSigned {
		return tlsconfig.LoadServer(t.TLSCert, t.TLSKey, t.TLSClientCA)
	}
	if hn, err := os.Hostname(); err == nil && slices.Contains(tlsHosts, "") {
		tlsHosts = append(tlsHosts, hn)
	}
	cert, err := tlsconfig.SelfSigned(tlsHosts, time.Now())
	if err != nil {
		return nil, err
	}
	return tlsconfig.SelfSignedServer(cert, t.TLSClientCA)
}

// logTLS logs the certificate ts serves (nothing when ts is nil): serve
// calls it once the listeners are bound, so that a start that fails to
// bind logs none.
func logTLS(ts *tlsconfig.Server, t TransportConfig, logger zerolog.Logger) {
	if ts == nil {
		return
	}
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
// With ts nil, or reading no file (self-signed without a client CA file),
// it does nothing, and SIGHUP keeps its default action.
func watchReload(ts *tlsconfig.Server, logger zerolog.Logger) (stop func()) {
	if ts == nil {
		return func() {}
	}
	if cert, key, clientCA := ts.Files(); cert == "" && key == "" && clientCA == "" {
		return func() {}
	}
	return onSIGHUP(func() {
		logger.Info().Str("logger", "main").Msg("SIGHUP: reloading TLS certificate files")
		if err := ts.Reload(); err != nil {
			logger.Warn().Str("logger", "main").Err(err).Msgf("TLS reload failed, still serving the previous certificate: %v", err)
			return
		}
		logCertificate(logger, "TLS: reloaded certificate", ts.Certificate())
	})
}

// clientTLS returns send's TLS configuration, for a tls:// address: the
// CAs that verify the server, or none with tls-insecure (warned about),
// and a client certificate.
func clientTLS(t TransportConfig, logger zerolog.Logger) (*tls.Config, error) {
	tc, err := tlsconfig.Client(tlsconfig.ClientOptions{
		CAFile: t.TLSCA, ServerName: t.TLSServerName, CertFile: t.TLSCert, KeyFile: t.TLSKey, Insecure: t.TLSInsecure,
	})
	if err != nil {
		return nil, err
	}
	if t.TLSInsecure {
		logger.Warn().Str("logger", "echo_client").Bool("tls_insecure", true).
			Msg("TLS: NOT verifying the server's certificate (--tls-insecure): anyone on the path can read and change the echo")
	}
	return tc, nil
}
