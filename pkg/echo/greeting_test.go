package echo_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// Tests of Server.Greeting (greeting.go) on the wire: every variant (both
// engines), TCP, Unix sockets and TLS, and never UDP.

// greetingTemplate names every field; the test's host name and ZONE come
// from WithGreetingEnv.
const greetingTemplate = "backend {hostname} {env:ZONE} on {listener} for {peer} via={via} proxy={proxy} {{ok}}"

// withGreeting sets the template and the test's host name and environment.
func withGreeting(s *echo.Server) {
	s.Greeting = greetingTemplate
	echo.WithGreetingEnv(s, "h1", map[string]string{"ZONE": "z-a"})
}

// wantGreeting is the line greetingTemplate makes for a connection from
// peer to listener.
func wantGreeting(listener, peer string) string {
	return fmt.Sprintf("backend h1 z-a on %s for %s via= proxy=none {ok}\n", listener, peer)
}

// greetedEcho sends the seed's messages on c, the first at once, before
// the greeting is read, half-closes, and returns what came back.
func greetedEcho(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(ioTimeout))
	for _, m := range seedMessages {
		if _, err := c.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read %q, %v", got, err)
	}
	return string(got)
}

// TestGreetingTCP: on every variant, a client reads the greeting line,
// with every field, then the exact echo of what it sent, including what
// it sent with the connect, before the greeting came. The observer does
// not count the greeting, and a logged server does not log it as data.
func TestGreetingTCP(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			rec := newRecorder()
			var logs syncBuffer
			addr, _ := startVariant(t, v, &logs, func(s *echo.Server) {
				withGreeting(s)
				s.Observer = rec
			})
			c := dial(t, addr)
			want := wantGreeting(addr, c.LocalAddr().String()) + seedEcho
			if got := greetedEcho(t, c); got != want {
				t.Fatalf("read %q, want %q", got, want)
			}

			// A client that reads the line before it sends anything.
			c2 := dial(t, addr)
			c2.SetDeadline(time.Now().Add(ioTimeout))
			line, err := bufio.NewReader(c2).ReadString('\n')
			if want := wantGreeting(addr, c2.LocalAddr().String()); err != nil || line != want {
				t.Fatalf("greeting %q, %v; want %q", line, err, want)
			}
			roundTrip(t, c2, []byte("after the greeting"))
			c2.Close()

			rec.waitClosed(t, echo.CloseEOF, 2)
			echoed := int64(len(seedEcho) + len("after the greeting"))
			if r, s := rec.received.Load(), rec.sent.Load(); r != echoed || s != r {
				t.Errorf("observer: received %d, sent %d; want %d each (the greeting is not an echo)", r, s, echoed)
			}
			checkGreetingLogged(t, logs.String(), v.name)
		})
	}
}

// checkGreetingLogged checks the connections' log lines: at debug level,
// one "sending greeting" line a connection and the data lines of the
// echo only, never the greeting as "sent b'...'".
func checkGreetingLogged(t *testing.T, logs, variant string) {
	t.Helper()
	debug := strings.HasPrefix(variant, "debug")
	greetings := 0
	for _, l := range parseLog(t, logs) {
		if strings.Contains(l.Message, "backend h1") {
			t.Errorf("the greeting is logged as data: %q", l.Message)
		}
		if l.Message == "sending greeting" {
			greetings++
			if l.Level != "debug" || l.Bytes == nil || *l.Bytes < len(wantGreeting("", "")) {
				t.Errorf("greeting line %+v", l)
			}
		}
	}
	if want := map[bool]int{true: 2, false: 0}[debug]; greetings != want {
		t.Errorf("%d \"sending greeting\" lines, want %d", greetings, want)
	}
}

// TestGreetingUnix: both engines greet a Unix socket's clients; {peer}
// is the socket path, as the connection's log lines show it.
func TestGreetingUnix(t *testing.T) {
	for _, engine := range []struct {
		name  string
		loops bool
		srv   func(*echo.Server) *echo.Server
	}{
		{"event loops", runtime.GOOS == "linux", func(s *echo.Server) *echo.Server { return s }},
		{"goroutines", false, echo.WithoutLoops},
	} {
		t.Run(engine.name, func(t *testing.T) {
			path := socketPath(t)
			srv := engine.srv(&echo.Server{})
			withGreeting(srv)
			serveBound(t, srv, "unix://"+path)
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got, want := greetedEcho(t, c), wantGreeting(path, path)+seedEcho; got != want {
				t.Fatalf("read %q, want %q", got, want)
			}
			held, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			held.SetDeadline(time.Now().Add(ioTimeout))
			line, err := bufio.NewReader(held).ReadString('\n')
			if want := wantGreeting(path, path); err != nil || line != want {
				t.Fatalf("greeting %q, %v; want %q", line, err, want)
			}
			if got, want := echo.LoopConns(srv), map[bool]int{false: 0, true: 1}[engine.loops]; got != want {
				t.Errorf("%d connections served by event loops, want %d", got, want)
			}
			roundTrip(t, held, []byte("after the greeting"))
		})
	}
}

// TestGreetingTLS: the greeting comes inside TLS, after the handshake,
// then the echo, also of what was sent with the handshake.
func TestGreetingTLS(t *testing.T) {
	fx := newTLSFixture(t)
	srv := &echo.Server{}
	withGreeting(srv)
	addr := serveTLS(t, srv, &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}})
	hostPort := strings.TrimPrefix(addr, "tls://")
	c, err := tls.Dial("tcp", hostPort, &tls.Config{RootCAs: fx.ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, want := greetedEcho(t, c), wantGreeting(hostPort, c.LocalAddr().String())+seedEcho; got != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// TestGreetingNotOnUDP: a udp:// address of a Server with a greeting
// answers each datagram with itself, never larger, and the Server says
// for each of its UDP sockets that it does not greet there.
func TestGreetingNotOnUDP(t *testing.T) {
	var logs syncBuffer
	srv := &echo.Server{Logger: debugLogger(&logs)}
	withGreeting(srv)
	addrs, _ := serveBound(t, srv, "udp://127.0.0.1:0", "udp://127.0.0.1:0", "127.0.0.1:0")
	for _, a := range addrs[:2] {
		c, err := net.Dial("udp", strings.TrimPrefix(a, "udp://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioTimeout))
		c.Write([]byte("ping"))
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "ping" {
			t.Fatalf("UDP answer %q, %v; want %q alone", buf[:n], err, "ping")
		}
	}
	tcp := dial(t, addrs[2])
	if got, want := greetedEcho(t, tcp), wantGreeting(addrs[2], tcp.LocalAddr().String())+seedEcho; got != want {
		t.Fatalf("TCP beside UDP: read %q, want %q", got, want)
	}
	said := map[string]int{}
	for _, l := range parseLog(t, logs.String()) {
		if strings.HasPrefix(l.Message, "no greeting on udp://127.0.0.1:") {
			said[strings.Fields(l.Message)[3]]++
			if l.Level != "info" || !strings.Contains(l.Message, "no amplification") {
				t.Errorf("line %+v", l)
			}
		}
	}
	if len(said) != 2 || said[addrs[0]+":"] != 1 || said[addrs[1]+":"] != 1 {
		t.Errorf("lines that say there is no greeting on UDP: %v, want one for each of %v:\n%s", said, addrs[:2], logs.String())
	}
}

// TestGreetingInvalid: a template that is not valid stops Serve and
// ServePacket at once with an error wrapping ErrInvalidGreeting, which
// ValidateGreeting returns too.
func TestGreetingInvalid(t *testing.T) {
	for _, tmpl := range []string{"{bogus}", "unclosed {peer", "two\nlines", "{env:ECHO_TEST_SURELY_UNSET_9}"} {
		t.Run(tmpl, func(t *testing.T) {
			if err := echo.ValidateGreeting(tmpl); !errors.Is(err, echo.ErrInvalidGreeting) {
				t.Errorf("ValidateGreeting = %v, want ErrInvalidGreeting", err)
			}
			srv := &echo.Server{Greeting: tmpl}
			ln := listenLocal(t)
			if err := srv.Serve(ln); !errors.Is(err, echo.ErrInvalidGreeting) || strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("Serve = %v, want one line wrapping ErrInvalidGreeting", err)
			}
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.ServePacket(pc); !errors.Is(err, echo.ErrInvalidGreeting) {
				t.Errorf("ServePacket = %v, want ErrInvalidGreeting", err)
			}
		})
	}
	if err := echo.ValidateGreeting(""); err != nil {
		t.Errorf("ValidateGreeting(\"\") = %v, want nil (off)", err)
	}
}

// gatedObserver records each connection's events in order; the first
// connection's ConnAccepted waits for gate, so that the test can act
// before the server reads anything from it.
type gatedObserver struct {
	gate   chan struct{}
	closed chan struct{} // a value each time a connection closes
	mu     sync.Mutex
	events [][]string
}

func (o *gatedObserver) Listening(string, bool)    {}
func (o *gatedObserver) AcceptError(string, error) {}
func (o *gatedObserver) ConnAccepted(string, net.Addr) echo.ConnObserver {
	o.mu.Lock()
	o.events = append(o.events, nil)
	i := len(o.events) - 1
	o.mu.Unlock()
	if i == 0 {
		<-o.gate
	}
	return &gatedConn{o, i}
}

func (o *gatedObserver) of(i int) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.events[i])
}

type gatedConn struct {
	o *gatedObserver
	i int
}

func (c *gatedConn) add(e string) {
	c.o.mu.Lock()
	c.o.events[c.i] = append(c.o.events[c.i], e)
	c.o.mu.Unlock()
}
func (c *gatedConn) Received(n int)              { c.add(fmt.Sprintf("received %d", n)) }
func (c *gatedConn) Sent(n int, _ time.Duration) { c.add(fmt.Sprintf("sent %d", n)) }
func (c *gatedConn) Closed(r echo.CloseReason) {
	c.add("closed")
	c.o.closed <- struct{}{}
}

// TestGreetingAfterReset: a client sends its PROXY header and its first
// bytes, then resets the connection before the server reads them. The
// greeting's write fails and closes the connection; nothing it sent is
// then echoed or reported (the descriptor may already be a new
// connection's), and the next connections get their own echo only.
func TestGreetingAfterReset(t *testing.T) {
	for _, v := range variants[:2] { // loops and goroutines
		t.Run(v.name, func(t *testing.T) {
			obs := &gatedObserver{gate: make(chan struct{}), closed: make(chan struct{}, 16)}
			addr, _ := startVariant(t, v, nil, func(s *echo.Server) {
				s.Greeting = "hello"
				s.ListenerOptions.ProxyProtocol = true
				s.Observer = obs
			})
			header := "PROXY TCP4 192.0.2.1 192.0.2.2 1000 2000\r\n"
			a := dial(t, addr)
			if _, err := a.Write([]byte(header + "LEAKED")); err != nil {
				t.Fatal(err)
			}
			a.SetLinger(0)
			a.Close() // a reset, before the server reads
			close(obs.gate)
			<-obs.closed
			if got := obs.of(0); !slices.Equal(got, []string{"closed"}) {
				t.Errorf("the reset connection's events: %q, want only its close", got)
			}
			for i := range 8 {
				b := dial(t, addr)
				b.SetDeadline(time.Now().Add(ioTimeout))
				mine := fmt.Sprintf("mine %d", i)
				if _, err := b.Write([]byte(header + mine)); err != nil {
					t.Fatal(err)
				}
				b.CloseWrite()
				if got, err := io.ReadAll(b); err != nil || string(got) != "hello\n"+mine {
					t.Fatalf("connection %d read %q, %v; want %q", i, got, err, "hello\n"+mine)
				}
			}
		})
	}
}
