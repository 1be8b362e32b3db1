package tlsconfig

import "crypto/tls"

// ClientOptions are the TLS settings of a client.
type ClientOptions struct {
	// CAFile holds the PEM certificates of the CAs that may sign the
	// server's certificate. If empty, the system's roots are used.
	CAFile string
	// ServerName is the name the server's certificate must hold, and the
	// one sent in SNI. If empty, the host being connected to.
	ServerName string
	// CertFile and KeyFile hold the client certificate presented for
	// mutual TLS; both or neither.
	CertFile, KeyFile string
	// Insecure skips verifying the server's certificate.
	Insecure bool
}

// Client returns the client configuration for o: TLS 1.2 at least.
// Errors are *FileError values.
func Client(o ClientOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName, InsecureSkipVerify: o.Insecure}
	if o.CAFile != "" {
		pool, err := LoadCertPool(o.CAFile, RoleCA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		cert, err := LoadKeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		// Always present it, even when it is not signed by a CA the
		// server names in its request (Go's client would silently send
		// none): the server then says what is wrong with it, rather
		// than that there was no certificate.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}
	}
	return cfg, nil
}
