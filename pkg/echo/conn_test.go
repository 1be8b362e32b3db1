package echo_test

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
)

func TestLoggerName(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want string
	}{
		{"seed IPv6 peer", &net.TCPAddr{IP: net.IPv6loopback, Port: 64624}, "echo_::1_64624"},
		{"IPv4 peer", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 51234}, "echo_127.0.0.1_51234"},
		{"IPv4 in 4-byte form", &net.TCPAddr{IP: net.IP{10, 1, 2, 3}, Port: 1}, "echo_10.1.2.3_1"},
		{"zoned IPv6 peer", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 7, Zone: "eth0"}, "echo_fe80::1%eth0_7"},
		{"Unix socket", &net.UnixAddr{Name: "/run/echo.sock", Net: "unix"}, "echo_/run/echo.sock"},
		{"nil", nil, "echo_unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := echo.LoggerName(tt.addr); got != tt.want {
				t.Errorf("LoggerName(%v) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

// TestServerLogs runs the seed exchange and checks the transcript line by
// line: the seed's logger names and messages, as JSON with the peer and
// byte counts, data lines at debug level and the rest at info.
func TestServerLogs(t *testing.T) {
	for _, level := range []zerolog.Level{zerolog.DebugLevel, zerolog.InfoLevel} {
		t.Run(level.String(), func(t *testing.T) {
			var logs syncBuffer
			srv := &echo.Server{Addr: "127.0.0.1:0", Logger: zerolog.New(&logs).Level(level)}
			b := bindRetry(t, srv)
			port := portOf(t, b.Listeners[0].Addr())
			stop := serveGracefully(t, srv, b)

			c := dial(t, fmt.Sprintf("127.0.0.1:%d", port))
			for _, m := range seedMessages {
				if _, err := c.Write(m); err != nil {
					t.Fatal(err)
				}
			}
			c.CloseWrite()
			if got, err := readAll(c); err != nil || string(got) != seedEcho {
				t.Fatalf("echo = %q, %v; want %q", got, err, seedEcho)
			}
			local := portOf(t, c.LocalAddr())
			stop() // waits for the connection, so its log is complete

			lines := parseLog(t, logs.String())
			if len(lines) < 2 {
				t.Fatalf("only %d log lines:\n%s", len(lines), logs.String())
			}
			first, last := lines[0], lines[len(lines)-1]
			wantStart := fmt.Sprintf("starting up on 127.0.0.1 port %d", port)
			if first.Logger != "main" || first.Message != wantStart || first.Level != "info" {
				t.Errorf("first line = %+v, want main at info: %q", first, wantStart)
			}
			if want := []string{fmt.Sprintf("127.0.0.1:%d", port)}; fmt.Sprint(first.Listeners) != fmt.Sprint(want) {
				t.Errorf("listeners = %q, want %q", first.Listeners, want)
			}
			if last.Logger != "main" || last.Message != "closing server" || last.Level != "info" {
				t.Errorf("last line = %+v, want main at info: closing server", last)
			}

			name := fmt.Sprintf("echo_127.0.0.1_%d", local)
			peer := fmt.Sprintf("127.0.0.1:%d", local)
			var conn []logLine
			for _, l := range lines[1 : len(lines)-1] {
				if l.Logger != name {
					t.Errorf("line from logger %q, want %q: %+v", l.Logger, name, l)
					continue
				}
				if l.Peer != peer {
					t.Errorf("line %q has peer %q, want %q", l.Message, l.Peer, peer)
				}
				conn = append(conn, l)
			}
			if len(conn) < 2 {
				t.Fatalf("%d lines from %s, want at least connection accepted and closing:\n%s", len(conn), name, logs.String())
			}
			if l := conn[0]; l.Message != "connection accepted" || l.Level != "info" {
				t.Errorf("first connection line = %+v, want connection accepted at info", l)
			}
			if l := conn[len(conn)-1]; l.Message != "closing" || l.Level != "info" || l.Reason != "eof" {
				t.Errorf("last connection line = %+v, want closing at info, reason eof", l)
			}

			data := conn[1 : len(conn)-1]
			if level == zerolog.InfoLevel {
				if len(data) != 0 {
					t.Errorf("at info level, %d data lines were logged: %+v", len(data), data)
				}
				return
			}
			if len(data) == 0 || len(data)%2 != 0 {
				t.Fatalf("%d data lines, want received/sent pairs:\n%s", len(data), logs.String())
			}
			var echoed strings.Builder
			for i := 0; i < len(data); i += 2 {
				recv, sent := data[i], data[i+1]
				lit, ok := strings.CutPrefix(recv.Message, "received ")
				if !ok {
					t.Fatalf("line %q, want received b'...'", recv.Message)
				}
				if sent.Message != "sent "+lit {
					t.Errorf("after %q came %q, want %q", recv.Message, sent.Message, "sent "+lit)
				}
				chunk, err := unquote(lit)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range []logLine{recv, sent} {
					if l.Level != "debug" {
						t.Errorf("%q at level %s, want debug", l.Message, l.Level)
					}
					if l.Bytes == nil || *l.Bytes != len(chunk) {
						t.Errorf("%q has bytes %v, want %d", l.Message, l.Bytes, len(chunk))
					}
				}
				echoed.Write(chunk)
			}
			if echoed.String() != seedEcho {
				t.Errorf("received lines add up to %q, want %q", echoed.String(), seedEcho)
			}
		})
	}
}
