package bench

import (
	"fmt"
	"net"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/echoctl/echoctl/pkg/echo"
)

// maxGreetings bounds the distinct greetings a run counts; any greeting
// past them counts as otherGreetings, so that a server whose greeting
// changes on every connection cannot grow the Result without bound.
const maxGreetings = 1000

// otherGreetings counts the greetings past the first maxGreetings
// distinct ones.
const otherGreetings = "(other)"

// prelude does what a new connection needs before the load, once dial
// has written the PROXY header (Config.Proxy): it reads the server's
// greeting (Config.Greeting), counting it, within one OpTimeout. conn is
// the connection's index (connrate: the worker's), for a mismatch.
func (r *runner) prelude(c net.Conn, conn int) error {
	if !r.cfg.Greeting {
		return nil
	}
	if err := c.SetDeadline(r.opDeadline(time.Now())); err != nil {
		return err
	}
	line, rest, err := echo.ReadGreeting(c)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if len(rest) > 0 {
		// Bytes nobody sent: an echo longer than what was sent.
		return &MismatchError{Conn: conn, Err: &echo.MismatchError{Received: rest[0], Extra: true}}
	}
	line = greetingKey(line)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.greetings[line]; !ok && len(r.greetings) >= maxGreetings {
		line = otherGreetings
	}
	r.greetings[line]++
	return nil
}

// greetingKey is the key a greeting counts under: the line itself, or,
// when it is not valid UTF-8 (which JSON cannot hold), the line quoted as
// a Go string, so that two greetings never merge.
func greetingKey(line string) string {
	if utf8.ValidString(line) {
		return line
	}
	return strconv.Quote(line)
}
