package bench_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/certtest"
	"github.com/echoctl/echoctl/internal/testtool"
	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo"
)

// tlsServer is a server certificate for 127.0.0.1 and localhost, and the
// client configuration that trusts it.
type tlsServer struct {
	leaf   *certtest.Leaf
	client *tls.Config
}

func newTLSServer(t *testing.T) tlsServer {
	ca := certtest.NewCA(t, "bench test CA")
	leaf := ca.Issue(t, certtest.Options{CommonName: "bench server", Hosts: []string{"localhost", "127.0.0.1"}})
	return tlsServer{leaf: leaf, client: &tls.Config{RootCAs: ca.Pool()}}
}

// benchModes are every stream mode, briefly.
var benchModes = []struct {
	name string
	cfg  bench.Config
}{
	{"pingpong", bench.Config{Mode: bench.ModePingPong, Conns: 2}},
	{"pingpong pipelined", bench.Config{Mode: bench.ModePingPong, Conns: 2, Pipeline: 4}},
	{"pingpong at a rate", bench.Config{Mode: bench.ModePingPong, Conns: 2, Rate: 500}},
	{"stream", bench.Config{Mode: bench.ModeStream, Conns: 2, Chunk: 16 << 10}},
	{"connrate", bench.Config{Mode: bench.ModeConnRate, Conns: 2}},
	{"connrate resuming", bench.Config{Mode: bench.ModeConnRate, Conns: 2, TLSResume: true}},
	{"idle", bench.Config{Mode: bench.ModeIdle, Conns: 20}},
}

// checkRun runs cfg against addr in every mode and checks the run echoed
// without error; over TLS, that every connection had a handshake, and
// that they resumed only when asked to.
func checkModes(t *testing.T, addr string, tc *tls.Config) {
	for _, m := range benchModes {
		if m.cfg.TLSResume && tc == nil {
			continue
		}
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.Addr, cfg.TLSConfig = addr, tc
			cfg.Warmup, cfg.Duration = testWarmup, testDuration
			if cfg.Mode == bench.ModeIdle {
				// Opening every connection is what an idle run measures,
				// within the run: socat forks and handshakes for each, which
				// a loaded machine may not do 20 times in 650 ms.
				cfg.Duration = 3 * time.Second
			}
			res, err := runTimed(t, context.Background(), cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Messages == 0 || res.Bytes == 0 || res.Errors.Total() != 0 || res.Latency.Count != res.Messages {
				t.Fatalf("messages %d, bytes %d, errors %+v, latency %+v", res.Messages, res.Bytes, res.Errors, res.Latency)
			}
			if tc == nil {
				if res.TLS != nil {
					t.Errorf("TLS = %+v without TLS", res.TLS)
				}
				return
			}
			if res.TLS == nil || res.TLS.Handshakes != res.Connects {
				t.Fatalf("TLS = %+v, want a handshake for each of the %d connections", res.TLS, res.Connects)
			}
			if cfg.TLSResume != (res.TLS.Resumed > 0) {
				t.Errorf("TLS = %+v, want sessions resumed: %v", res.TLS, cfg.TLSResume)
			}
			// Each worker's first handshake is full; the rest may resume.
			if cfg.TLSResume && res.TLS.Resumed < res.TLS.Handshakes/2 {
				t.Errorf("TLS = %+v: want most handshakes resumed", res.TLS)
			}
		})
	}
}

func TestModesOverTLSAndUnix(t *testing.T) {
	ts := newTLSServer(t)
	srv := &echo.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{ts.leaf.TLS}}}
	sock := filepath.Join(t.TempDir(), "echo.sock")
	addrs := serveBound(t, srv, "tls://127.0.0.1:0", "unix://"+sock)
	t.Run("tls", func(t *testing.T) { checkModes(t, addrs[0], ts.client) })
	t.Run("tls by name", func(t *testing.T) {
		// localhost resolves; later connects dial the address reached
		// and still verify the certificate's name.
		_, port, _ := net.SplitHostPort(addrs[0][len("tls://"):])
		cfg := bench.Config{Addr: "tls://localhost:" + port, TLSConfig: ts.client, Mode: bench.ModeConnRate, Warmup: testWarmup, Duration: testDuration}
		if res, err := runTimed(t, context.Background(), cfg); err != nil || res.TLS.Handshakes < 2 {
			t.Fatalf("Run: %v, %+v", err, res)
		}
	})
	t.Run("unix", func(t *testing.T) { checkModes(t, addrs[1], nil) })
}

func TestTLSUntrusted(t *testing.T) {
	ts := newTLSServer(t)
	srv := &echo.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{ts.leaf.TLS}}}
	addr := serveBound(t, srv, "tls://127.0.0.1:0")[0]
	_, err := bench.Run(context.Background(), bench.Config{Addr: addr, Duration: testDuration})
	if err == nil || !regexp.MustCompile(`certificate`).MatchString(err.Error()) {
		t.Fatalf("Run: %v; want the certificate refused", err)
	}
}

// TestModesAgainstSocat runs every mode against socat, a server echoctl
// did not write: over a Unix socket and over TLS (OPENSSL-LISTEN).
func TestModesAgainstSocat(t *testing.T) {
	socat := testtool.Need(t, "socat", "an echo server echoctl did not write")
	listening := regexp.MustCompile(`listening on`)
	t.Run("unix", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "socat.sock")
		startProc(t, true, listening, socat, "-d", "-d", "UNIX-LISTEN:"+sock+",fork", "PIPE")
		checkModes(t, "unix://"+sock, nil)
	})
	t.Run("tls", func(t *testing.T) {
		ts := newTLSServer(t)
		cert, key := ts.leaf.WriteFiles(t, t.TempDir(), "server")
		port := freePort(t)
		startProc(t, true, listening, socat, "-d", "-d",
			fmt.Sprintf("OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,cert=%s,key=%s,verify=0", port, cert, key), "PIPE")
		checkModes(t, fmt.Sprintf("tls://127.0.0.1:%d", port), ts.client)
	})
}

// freePort returns a 127.0.0.1 TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestIdleSeesClosedTLS holds idle connections to a server that closes
// them after 100ms idle: the check at the end finds every one closed, over
// TLS as over a Unix socket.
func TestIdleSeesClosedTLS(t *testing.T) {
	ts := newTLSServer(t)
	srv := &echo.Server{IdleTimeout: 100 * time.Millisecond, TLSConfig: &tls.Config{Certificates: []tls.Certificate{ts.leaf.TLS}}}
	addrs := serveBound(t, srv, "tls://127.0.0.1:0", "unix://"+filepath.Join(t.TempDir(), "echo.sock"))
	for i, addr := range addrs {
		t.Run(addr[:strings.Index(addr, ":")], func(t *testing.T) {
			cfg := bench.Config{Addr: addr, Mode: bench.ModeIdle, Conns: 5, Duration: 600 * time.Millisecond}
			if i == 0 {
				cfg.TLSConfig = ts.client
			}
			res, err := runTimed(t, context.Background(), cfg)
			if !errors.Is(err, bench.ErrRunFailed) || res.Held != 0 || res.Errors.Total() != 5 {
				t.Fatalf("Run: %v, held %d, errors %+v; want all 5 found closed", err, res.Held, res.Errors)
			}
		})
	}
}
