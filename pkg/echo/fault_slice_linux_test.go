package echo_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestFaultSliceSendsOneByOne: the socket of a connection whose echo is
// sliced takes a piece only once the one before has left it
// (TCP_NOTSENT_LOWAT 1): behind a peer that stopped reading, a slice of
// one byte took one system call a byte until some 2.7 MB were queued, a
// CPU for five seconds. A connection without slices keeps the system's
// setting (a feature that is off costs nothing).
func TestFaultSliceSendsOneByOne(t *testing.T) {
	for _, ft := range faultTargets() {
		for _, slice := range []int{0, 1} {
			t.Run(fmt.Sprintf("%s slice %d", ft.name, slice), func(t *testing.T) {
				var srv *echo.Server
				dialer := ft.start(t, nil, func(s *echo.Server) {
					srv = s
					if slice > 0 {
						s.Faults = &echo.Faults{Slice: slice}
					}
				})
				c := dialer.conn(t)
				c.SetDeadline(time.Now().Add(ioTimeout))
				roundTrip(t, c, []byte("ab"))
				got := echo.NotSentLowats(srv)
				if len(got) != 1 {
					t.Fatalf("%d connections, want 1", len(got))
				}
				switch {
				case got[0] == -2: // a Unix socket or a wrapper: nothing to set
					if !slices.Contains([]string{"unix loops", "unix goroutines", "tcp opaque conns"}, ft.name) {
						t.Errorf("the socket's TCP_NOTSENT_LOWAT could not be read")
					}
				case slice > 0 && got[0] != 1:
					t.Errorf("sliced: TCP_NOTSENT_LOWAT %d, want 1", got[0])
				case slice == 0 && got[0] == 1:
					t.Errorf("not sliced: TCP_NOTSENT_LOWAT set to 1")
				}
			})
		}
	}
}
