package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Roles of the files a FileError names.
const (
	RoleCert     = "certificate"
	RoleKey      = "key"
	RoleClientCA = "client CA"
	RoleCA       = "CA"
)

// FileError reports a PEM file that cannot be used.
type FileError struct {
	// Role is what the file holds: RoleCert, RoleKey, RoleClientCA or RoleCA.
	Role string
	// Path is the file's path.
	Path string
	// Err is the cause.
	Err error
}

// Error returns "ROLE file PATH: CAUSE".
func (e *FileError) Error() string { return e.Role + " file " + e.Path + ": " + e.Reason() }

// Reason returns the cause alone, without the file: "no such file or
// directory", "no PEM certificate in it", "the private key does not match
// the certificate".
func (e *FileError) Reason() string {
	var pe *fs.PathError
	if errors.As(e.Err, &pe) {
		return pe.Err.Error()
	}
	return e.Err.Error()
}

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// LoadKeyPair reads a certificate chain and its private key from PEM
// files. The error is a *FileError naming the file at fault: a missing or
// unreadable file, one that is not a regular file or is over 4 MiB, a
// certificate file without a parseable certificate, or a key that is
// missing, unparseable or does not match the certificate.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := readFile(certFile)
	if err != nil {
		return tls.Certificate{}, &FileError{Role: RoleCert, Path: certFile, Err: err}
	}
	if _, err := parseCerts(certPEM); err != nil {
		return tls.Certificate{}, &FileError{Role: RoleCert, Path: certFile, Err: err}
	}
	keyPEM, err := readFile(keyFile)
	if err != nil {
		return tls.Certificate{}, &FileError{Role: RoleKey, Path: keyFile, Err: err}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if reason := keyPEMReason(keyPEM); reason != nil {
			err = reason
		} else {
			err = keyPairReason(err)
		}
		return tls.Certificate{}, &FileError{Role: RoleKey, Path: keyFile, Err: err}
	}
	return cert, nil
}

// keyPEMReason says what is wrong with a key file whose key did not load,
// from its PEM blocks, when they tell: an encrypted key, or no private key
// at all (a certificate chain given as the key); nil otherwise.
func keyPEMReason(keyPEM []byte) error {
	var types []string
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if strings.Contains(b.Type, "ENCRYPTED") || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return errors.New("the private key is encrypted: echoctl reads unencrypted keys (openssl pkey -in KEY -out PLAIN decrypts one)")
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			return nil
		}
		types = append(types, b.Type)
	}
	switch {
	case len(types) == 0:
		return nil
	case strings.Join(types, "") == strings.Repeat("CERTIFICATE", len(types)) && len(types) == 1:
		return errors.New("it holds a certificate, not a private key")
	case strings.Join(types, "") == strings.Repeat("CERTIFICATE", len(types)):
		return errors.New("it holds certificates (a chain), not a private key")
	}
	return fmt.Errorf("no PEM private key in it, only %s", strings.Join(types, ", "))
}

// keyPairReason rewords tls.X509KeyPair's errors about the key, whose
// certificate is known to be good.
func keyPairReason(err error) error {
	switch msg := err.Error(); {
	case msg == "tls: private key does not match public key",
		msg == "tls: private key type does not match public key type":
		return errors.New("the private key does not match the certificate")
	case msg == "tls: found a certificate rather than a key in the PEM for the private key":
		return errors.New("it holds a certificate, not a private key")
	case msg == "tls: failed to find any PEM data in key input",
		msg == "tls: failed to find \"PRIVATE KEY\" PEM block in key input after skipping PEM blocks of the following types: [CERTIFICATE]":
		return errors.New("no PEM private key in it")
	}
	return err
}

// LoadCertPool reads the PEM certificates of a CA file, a regular file of
// at most 4 MiB, into a pool. role is RoleClientCA or RoleCA, for the
// error, a *FileError.
func LoadCertPool(file, role string) (*x509.CertPool, error) {
	data, err := readFile(file)
	if err != nil {
		return nil, &FileError{Role: role, Path: file, Err: err}
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, &FileError{Role: role, Path: file, Err: err}
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// parseCerts parses every CERTIFICATE block of a PEM file; there must be
// at least one, and each must parse.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return certs, nil
}
