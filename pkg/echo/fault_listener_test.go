package echo_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestFaultsPerListener: one Server serves a clean port and a faulty one,
// whose address query sets faults over the Server's (none here), on both
// engines; a listener's keys stay over the Server's faults when SetFaults
// replaces them, and "0" turns one of the Server's off on one port.
func TestFaultsPerListener(t *testing.T) {
	for _, v := range variants[:2] { // quiet: loops and goroutines
		t.Run(v.name, func(t *testing.T) {
			srv := v.server(io.Discard)
			srv.Faults = &echo.Faults{}
			addrs, _ := serveBound(t, srv, "tcp://127.0.0.1:0", "tcp://127.0.0.1:0?fault-reset-after=2", "tcp://127.0.0.1:0?fault-corrupt=0")
			clean, faulty, noCorrupt := addrs[0], addrs[1], addrs[2]
			wantReset := func(addr string) {
				t.Helper()
				c := dial(t, addr)
				c.SetDeadline(time.Now().Add(ioTimeout))
				c.Write([]byte("abcd"))
				if got, err := readAll(c); len(got) > 2 || !isReset(err) {
					t.Fatalf("%s: read %q, %v; want at most 2 bytes, then a reset", addr, got, err)
				}
			}
			roundTrip(t, dial(t, clean), []byte("plain"))
			roundTrip(t, dial(t, noCorrupt), []byte("plain"))
			wantReset(faulty)

			// The Server's faults change; the faulty port keeps its reset
			// over them, and the port that set corrupt=0 keeps it off.
			if err := srv.SetFaults(&echo.Faults{Corrupt: 1, Delay: time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			wantReset(faulty)
			roundTrip(t, dial(t, noCorrupt), []byte("still plain"))
			c := dial(t, clean)
			c.SetDeadline(time.Now().Add(ioTimeout))
			msg := []byte("now corrupted")
			c.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil || string(got) == string(msg) {
				t.Fatalf("clean port after SetFaults(corrupt 1): read %q, %v; want a flipped bit", got, err)
			}
			if err := srv.SetFaults(nil); err != nil {
				t.Fatal(err)
			}
			roundTrip(t, dial(t, clean), []byte("plain again"))
			wantReset(faulty)
		})
	}
}

// TestFaultsPerListenerOnly: a Server without Faults still faults the
// listener whose query sets some, and none of the others; SetFaults needs
// Server.Faults.
func TestFaultsPerListenerOnly(t *testing.T) {
	srv := quietServer(io.Discard)
	addrs, _ := serveBound(t, srv, "tcp://127.0.0.1:0", "tcp://127.0.0.1:0?fault-reset-after=2")
	roundTrip(t, dial(t, addrs[0]), []byte("plain"))
	c := dial(t, addrs[1])
	c.SetDeadline(time.Now().Add(ioTimeout))
	c.Write([]byte("abcd"))
	if got, err := readAll(c); len(got) > 2 || !isReset(err) {
		t.Fatalf("read %q, %v; want at most 2 bytes, then a reset", got, err)
	}
	if err := srv.SetFaults(&echo.Faults{}); !errors.Is(err, echo.ErrInvalidFault) {
		t.Errorf("SetFaults without Server.Faults = %v, want ErrInvalidFault", err)
	}
}

// TestSetFaultsBeforeServe: faults set between Bind and ServeBound (serve
// takes SIGHUP from then on) are the ones the listener serves with; Bind
// refuses faults that are not valid before opening anything.
func TestSetFaultsBeforeServe(t *testing.T) {
	srv := quietServer(io.Discard)
	srv.Faults = &echo.Faults{}
	b, err := srv.Bind(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SetFaults(&echo.Faults{ResetAfter: echo.FaultAfter{Bytes: 2}}); err != nil {
		b.Close()
		t.Fatalf("SetFaults after Bind: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeBound(b) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, echo.ErrServerClosed) {
			t.Errorf("ServeBound = %v, want ErrServerClosed", err)
		}
	})
	c := dial(t, b.Addrs()[0])
	c.SetDeadline(time.Now().Add(ioTimeout))
	c.Write([]byte("abcd"))
	if got, err := readAll(c); len(got) > 2 || !isReset(err) {
		t.Fatalf("read %q, %v; want at most 2 bytes, then a reset", got, err)
	}

	bad := quietServer(io.Discard)
	bad.Faults = &echo.Faults{Corrupt: 2}
	if b, err := bad.Bind(t.Context(), "127.0.0.1:0"); !errors.Is(err, echo.ErrInvalidFault) {
		if err == nil {
			b.Close()
		}
		t.Errorf("Bind with Faults.Corrupt 2 = %v, want ErrInvalidFault", err)
	}
}

// TestParseListenAddrFaults: the fault keys of an address query, over
// the defaults, and their errors.
func TestParseListenAddrFaults(t *testing.T) {
	defaults := echo.ListenerOptions{Faults: map[string]string{"delay": "10ms"}}
	for _, tc := range []struct {
		addr string
		want string // ListenerOptions.String, or the error's text
		bad  bool
	}{
		{addr: "tcp://:9001?fault-delay=50ms&fault-share=0.5", want: "fault-delay=50ms&fault-share=0.5"},
		{addr: "tcp://:9001", want: "fault-delay=10ms"},
		{addr: "tcp://:9001?fault-jitter=5ms", want: "fault-delay=10ms&fault-jitter=5ms"},
		{addr: "tcp://:9001?fault-delay=", want: ""},
		{addr: "tcp://:9001?fault-delay=0&fault-share=100%25", want: "fault-delay=0&fault-share=1"},
		{addr: "udp://:9002?fault-drop=0.1&fault-duplicate=5%25", want: "fault-delay=10ms&fault-drop=0.1&fault-duplicate=0.05"},
		{addr: "tcp://:9001?fault-bogus=1", want: `unknown option "fault-bogus"`, bad: true},
		{addr: "tcp://:9001?fault-delay=soon", want: `option fault-delay "soon": "soon" is not a duration`, bad: true},
		{addr: "tcp://:9001?fault-drop=0.1", want: "fault-drop is not supported on tcp:// listeners", bad: true},
		{addr: "udp://:9002?fault-rate=1KiB", want: "fault-rate is not supported on udp:// listeners", bad: true},
		{addr: "tcp://:9001?fault-share=0", want: "a share above 0 is needed", bad: true},
		{addr: "tcp://:9001?fault-delay=1ms&fault-delay=2ms", want: `"fault-delay" is given twice`, bad: true},
	} {
		_, o, err := echo.ParseListenAddr(tc.addr, defaults)
		switch {
		case tc.bad && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n")):
			t.Errorf("ParseListenAddr(%q) = %v; want one line containing %q", tc.addr, err, tc.want)
		case !tc.bad && (err != nil || o.String() != tc.want):
			t.Errorf("ParseListenAddr(%q) = %q, %v; want %q", tc.addr, o.String(), err, tc.want)
		}
	}
	if defaults.Faults["delay"] != "10ms" || len(defaults.Faults) != 1 {
		t.Errorf("ParseListenAddr changed the defaults' faults: %v", defaults.Faults)
	}
}

// FuzzParseListenAddrFaults: whatever the query, ParseListenAddr returns
// a one-line *AddrError or options whose text form parses back to the
// same, and whose fault keys each parse.
func FuzzParseListenAddrFaults(f *testing.F) {
	for _, q := range []string{"fault-delay=50ms&fault-share=0.5", "fault-drop=0.1", "fault-duplicate=5%25", "fault-delay=0",
		"fault-reset-after=64KiB&proxy-protocol=on", "fault-rate=256KiB/s", "fault-delay=&fault-jitter=1ms", "fault-corrupt=1%25&fault-reorder=0.2"} {
		f.Add("tcp", q)
		f.Add("udp", q)
	}
	f.Fuzz(func(t *testing.T, network, query string) {
		if network != "udp" {
			network = "tcp"
		}
		addr := network + "://127.0.0.1:1?" + query
		_, o, err := echo.ParseListenAddr(addr, echo.ListenerOptions{})
		if err != nil {
			var ae *echo.AddrError
			if !errors.As(err, &ae) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseListenAddr(%q) = %v, not a one-line *AddrError", addr, err)
			}
			return
		}
		for k, v := range o.Faults {
			var faults echo.Faults
			if err := faults.Set(k, v); err != nil {
				t.Fatalf("ParseListenAddr(%q) kept %s=%q, which Set refuses: %v", addr, k, v, err)
			}
		}
		text := o.String()
		if text == "" {
			return
		}
		_, again, err := echo.ParseListenAddr(network+"://127.0.0.1:1?"+text, echo.ListenerOptions{})
		if err != nil || again.String() != text {
			t.Fatalf("%q shown as %q parses back as %q, %v", addr, text, again.String(), err)
		}
	})
}
