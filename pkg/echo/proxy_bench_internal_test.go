package echo

import (
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/internal/logging"
)

// BenchmarkConnPolicy is the user-space cost of a connection's policy from
// accept to close, without its system calls: naming, admission, the two
// info lines (text, to a Buffered), and with a PROXY header its stage.
func BenchmarkConnPolicy(b *testing.B) {
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort("203.0.113.7:41000")), net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:9000")))
	header, _ := h.Format()
	first := append(header, "This is the message. It will be sent in parts."...)
	for _, proxy := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "proxy-v2"}[proxy], func(b *testing.B) {
			buf := logging.NewBuffered(io.Discard, time.Hour)
			lg, _ := logging.New(buf, "text", benchLogLevel, false)
			s := &Server{Logger: lg}
			lconf, err := s.newListenerConf("127.0.0.1:9000", ListenerOptions{ProxyProtocol: proxy})
			if err != nil {
				b.Fatal(err)
			}
			local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000}
			peer := peerAddr{ap: netip.MustParseAddrPort("127.0.0.1:51234")}
			b.ReportAllocs()
			for b.Loop() {
				c := &conn{}
				if serve, _ := s.accepted(c, nil, local, peer, lconf, true); !serve {
					b.Fatal("refused")
				}
				if proxy {
					run := &stageRun{}
					lconf.stages.start(run, c, time.Now())
					rest, err := run.take(first)
					if err != nil || len(rest) != len(first)-len(header) {
						b.Fatal(err, len(rest))
					}
				}
				c.logClose(errReadEOF, CloseEOF)
				c.finish(CloseEOF)
			}
		})
	}
}

// benchLogLevel is the log level of BenchmarkConnPolicy: info, or from
// ECHOCTL_BENCH_LOG_LEVEL (warn: the policy without its log lines).
var benchLogLevel = func() zerolog.Level {
	if l, err := zerolog.ParseLevel(os.Getenv("ECHOCTL_BENCH_LOG_LEVEL")); err == nil && l != zerolog.NoLevel {
		return l
	}
	return zerolog.InfoLevel
}()
