package tlsconfig_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/echoctl/echoctl/internal/certtest"
	"github.com/echoctl/echoctl/internal/testtool"
	"github.com/echoctl/echoctl/internal/tlsconfig"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLoadKeyPairErrors(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "ca")
	a := ca.Issue(t, certtest.Options{CommonName: "a", Hosts: []string{"localhost"}})
	b := ca.Issue(t, certtest.Options{CommonName: "b", Hosts: []string{"localhost"}})
	aCert, aKey := a.WriteFiles(t, dir, "a")
	_, bKey := b.WriteFiles(t, dir, "b")
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello\n"), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	// An RSA key beside the certificates' ECDSA ones.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaFile := filepath.Join(dir, "rsa.pem")
	os.WriteFile(rsaFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)

	chain := filepath.Join(dir, "chain.pem") // a fullchain.pem given as the key
	certPEM, _ := os.ReadFile(aCert)
	os.WriteFile(chain, append(certPEM, certPEM...), 0o600)
	encrypted := filepath.Join(dir, "encrypted.pem")
	os.WriteFile(encrypted, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("opaque")}), 0o600)

	tests := []struct {
		name, cert, key string
		role, reason    string
	}{
		{"key file holds a chain", aCert, chain, tlsconfig.RoleKey, "it holds certificates (a chain), not a private key"},
		{"encrypted key", aCert, encrypted, tlsconfig.RoleKey, "the private key is encrypted: echoctl reads unencrypted keys (openssl pkey -in KEY -out PLAIN decrypts one)"},
		{"good", aCert, aKey, "", ""},
		{"missing certificate", missing, aKey, tlsconfig.RoleCert, "no such file or directory"},
		{"certificate not PEM", notPEM, aKey, tlsconfig.RoleCert, "no PEM certificate in it"},
		{"key file holds a certificate", aCert, aCert, tlsconfig.RoleKey, "it holds a certificate, not a private key"},
		{"missing key", aCert, missing, tlsconfig.RoleKey, "no such file or directory"},
		{"key not PEM", aCert, notPEM, tlsconfig.RoleKey, "no PEM private key in it"},
		{"key of another certificate", aCert, bKey, tlsconfig.RoleKey, "the private key does not match the certificate"},
		{"key of another type", aCert, rsaFile, tlsconfig.RoleKey, "the private key does not match the certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tlsconfig.LoadKeyPair(tt.cert, tt.key)
			if tt.role == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *tlsconfig.FileError
			if !errors.As(err, &fe) || fe.Role != tt.role || fe.Reason() != tt.reason {
				t.Fatalf("LoadKeyPair = %v; want a %s FileError: %s", err, tt.role, tt.reason)
			}
			if tt.reason == "no such file or directory" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%v is not fs.ErrNotExist", err)
			}
		})
	}
}

func TestLoadCertPool(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "ca")
	good := ca.WriteFile(t, dir, "ca.pem")
	if _, err := tlsconfig.LoadCertPool(good, tlsconfig.RoleCA); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, nil, 0o600)
	_, err := tlsconfig.LoadCertPool(empty, tlsconfig.RoleClientCA)
	if err == nil || err.Error() != "client CA file "+empty+": no PEM certificate in it" {
		t.Fatalf("LoadCertPool(empty) = %v", err)
	}
}

// handshake connects a client with cfg to a server with srv and returns
// the certificate the client saw, or the client's error.
func handshake(t *testing.T, srv, cfg *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.(*tls.Conn).Handshake()
		c.Close()
	}()
	defer func() { <-done }()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestServerReload(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "ca")
	first := ca.Issue(t, certtest.Options{CommonName: "first", Hosts: []string{"localhost"}})
	second := ca.Issue(t, certtest.Options{CommonName: "second", Hosts: []string{"localhost"}})
	certFile, keyFile := first.WriteFiles(t, dir, "server")
	s, err := tlsconfig.LoadServer(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	if got, err := handshake(t, s.Config(), client); err != nil || got.Subject.CommonName != "first" {
		t.Fatalf("before reload: %v, %v", got, err)
	}

	second.WriteFiles(t, dir, "server")
	if got, err := handshake(t, s.Config(), client); err != nil || got.Subject.CommonName != "first" {
		t.Fatalf("files changed, not reloaded: %v, %v; want the first certificate still", got, err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, err := handshake(t, s.Config(), client); err != nil || got.Subject.CommonName != "second" {
		t.Fatalf("after reload: %v, %v; want the second certificate", got, err)
	}
	if s.Certificate().Subject.CommonName != "second" {
		t.Errorf("Certificate() = %v", s.Certificate().Subject)
	}

	os.WriteFile(keyFile, []byte("garbage"), 0o600)
	if err := s.Reload(); err == nil {
		t.Fatal("Reload of a broken key succeeded")
	}
	if got, err := handshake(t, s.Config(), client); err != nil || got.Subject.CommonName != "second" {
		t.Fatalf("after a failed reload: %v, %v; want the second certificate still", got, err)
	}
}

func TestServerMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "ca")
	certFile, keyFile := ca.Issue(t, certtest.Options{CommonName: "server", Hosts: []string{"localhost"}}).WriteFiles(t, dir, "server")
	s, err := tlsconfig.LoadServer(certFile, keyFile, ca.WriteFile(t, dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.MutualTLS() {
		t.Fatal("MutualTLS() = false")
	}
	client := ca.Issue(t, certtest.Options{CommonName: "client", Client: true})
	if _, err := handshake(t, s.Config(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{client.TLS}, MaxVersion: tls.VersionTLS12}); err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
	if _, err := handshake(t, s.Config(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
}

func TestServerRefusesOldTLS(t *testing.T) {
	cert, err := tlsconfig.SelfSigned(nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := tlsconfig.SelfSignedServer(cert, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = handshake(t, s.Config(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("a TLS 1.1 client was accepted")
	}
}

func TestSelfSigned(t *testing.T) {
	now := time.Now()
	cert, err := tlsconfig.SelfSigned([]string{"echo.example", "192.0.2.1", "", "localhost"}, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	want := []string{"echo.example", "localhost", "192.0.2.1", "127.0.0.1", "::1"}
	if got := tlsconfig.Hosts(leaf); !slices.Equal(got, want) {
		t.Errorf("Hosts = %q, want %q", got, want)
	}
	if d := leaf.NotAfter.Sub(now) - tlsconfig.SelfSignedValidity; d < -time.Second || d > time.Second || !leaf.NotBefore.Before(now) {
		t.Errorf("valid %v to %v", leaf.NotBefore, leaf.NotAfter)
	}
	// A client that pins this certificate verifies it for each host.
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	s, err := tlsconfig.SelfSignedServer(cert, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "echo.example"} {
		if _, err := handshake(t, s.Config(), &tls.Config{RootCAs: pool, ServerName: host}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	cert, err := tlsconfig.SelfSigned(nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fp := tlsconfig.Fingerprint(cert.Leaf)
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Fatalf("Fingerprint = %q", fp)
	}
	testtool.Need(t, "openssl", "to compare fingerprints with")
	file := filepath.Join(t.TempDir(), "c.pem")
	certtestWritePEM(t, file, cert.Certificate[0])
	out, err := exec.Command("openssl", "x509", "-in", file, "-noout", "-fingerprint", "-sha256").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, "="+fp) {
		t.Errorf("openssl says %q, Fingerprint %q", got, fp)
	}
}

func TestClient(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "ca")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	certFile, keyFile := ca.Issue(t, certtest.Options{CommonName: "client", Client: true}).WriteFiles(t, dir, "client")
	cfg, err := tlsconfig.Client(tlsconfig.ClientOptions{CAFile: caFile, ServerName: "echo.example", CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ServerName != "echo.example" || cfg.GetClientCertificate == nil || cfg.RootCAs == nil || cfg.InsecureSkipVerify {
		t.Errorf("config %+v", cfg)
	}
	// The certificate is presented whatever CAs the server asks for.
	if got, err := cfg.GetClientCertificate(&tls.CertificateRequestInfo{}); err != nil || got == nil || len(got.Certificate) == 0 {
		t.Errorf("GetClientCertificate = %v, %v; want the loaded certificate", got, err)
	}
	if _, err := tlsconfig.Client(tlsconfig.ClientOptions{CertFile: certFile}); err == nil {
		t.Error("a certificate without a key was accepted")
	}
	cfg, err = tlsconfig.Client(tlsconfig.ClientOptions{Insecure: true})
	if err != nil || !cfg.InsecureSkipVerify || cfg.RootCAs != nil {
		t.Errorf("insecure config %+v, %v", cfg, err)
	}
}
