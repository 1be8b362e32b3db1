package tlsconfig

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"sync/atomic"
)

// A Server is a server's TLS configuration whose certificate (and client
// CA pool) can be replaced while serving: Config returns a *tls.Config
// that asks the Server for the current one at every handshake, and Reload
// swaps in what the files hold now. Connections already established keep
// the certificate they were made with. Create one with LoadServer or
// SelfSignedServer; the zero value is not usable.
type Server struct {
	certFile, keyFile, clientCAFile string

	self  *tls.Certificate // the self-signed certificate, if any
	state atomic.Pointer[serverState]
}

// serverState is what one load produced.
type serverState struct {
	cfg  *tls.Config
	leaf *x509.Certificate
}

// LoadServer loads a server certificate chain and key from PEM files and,
// if clientCAFile is not empty, the CAs of mutual TLS: clients must then
// present a certificate one of them signed. Errors are *FileError values.
func LoadServer(certFile, keyFile, clientCAFile string) (*Server, error) {
	s := &Server{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// SelfSignedServer serves cert, typically made by SelfSigned, with the
// client CAs of clientCAFile if it is not empty. Reload re-reads only the
// client CA file.
func SelfSignedServer(cert tls.Certificate, clientCAFile string) (*Server, error) {
	s := &Server{self: &cert, clientCAFile: clientCAFile}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the files again and, if all of them are good, serves what
// they hold from the next handshake on. On error the Server keeps serving
// what it served before.
func (s *Server) Reload() error {
	var cert tls.Certificate
	if s.self != nil {
		cert = *s.self
	} else {
		var err error
		if cert, err = LoadKeyPair(s.certFile, s.keyFile); err != nil {
			return err
		}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if s.clientCAFile != "" {
		pool, err := LoadCertPool(s.clientCAFile, RoleClientCA)
		if err != nil {
			return err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	s.state.Store(&serverState{cfg: cfg, leaf: leaf})
	return nil
}

// Config returns the configuration to serve with: TLS 1.2 at least, and at
// every handshake the certificate and client CAs of the last successful
// load.
func (s *Server) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.state.Load().cfg, nil
		},
	}
}

// Certificate returns the leaf certificate served now.
func (s *Server) Certificate() *x509.Certificate { return s.state.Load().leaf }

// MutualTLS reports whether clients must present a certificate.
func (s *Server) MutualTLS() bool { return s.state.Load().cfg.ClientCAs != nil }

// Files returns the certificate, key and client CA files the Server reads
// ("" for those it does not).
func (s *Server) Files() (certFile, keyFile, clientCAFile string) {
	return s.certFile, s.keyFile, s.clientCAFile
}

// Fingerprint returns the SHA-256 fingerprint of a certificate as
// upper-case hex pairs joined by colons, as `openssl x509 -fingerprint
// -sha256` prints it.
func Fingerprint(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	sum := sha256.Sum256(cert.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
