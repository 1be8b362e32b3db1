package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// runSendCount makes count exchanges of messages with client, each on a
// new connection, interval apart, handing each greeting to greet when
// showEach is set (as each exchange's log lines are, at info level and
// below), and writes the table of who answered to out. It returns the first mismatch
// if any echo differed (exit 3), else an error counting the failures if
// any exchange failed (exit 1); an interrupted run prints the table of
// the exchanges made.
func runSendCount(ctx context.Context, client *echo.Client, messages []string, count int, interval time.Duration, showEach bool, out io.Writer, greet func(string)) error {
	parts := byteParts(messages)
	t := newSendTally(client.Greeting)
	var interrupted error
	for i := range count {
		if i > 0 && interval > 0 {
			timer := time.NewTimer(interval)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
			}
		}
		if ctx.Err() != nil {
			interrupted = ctx.Err()
			break
		}
		var ex exchange
		client.Trace = &echo.ClientTrace{
			Connected: func(d time.Duration) { ex.connect, ex.connected = d, true },
			Greeted: func(line string) {
				ex.greeting, ex.greeted = line, true
				if showEach {
					greet(line)
				}
			},
			Echoed: func(d time.Duration) { ex.roundTrip = d },
		}
		_, err := client.Send(ctx, parts, nil)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			interrupted = err
			break
		}
		ex.err = err
		t.add(ex)
	}
	if err := writeSendTable(out, t.table()); err != nil {
		return fmt.Errorf("write standard output: %w", err)
	}
	cut := ""
	if interrupted != nil {
		cut = fmt.Sprintf(" (interrupted after %d of %s)", t.exchanges, exchanges(count))
	}
	switch {
	case t.firstMismatch != nil:
		return fmt.Errorf("send: %s%s; first mismatch: %w", t.failures(), cut, t.firstMismatch)
	case t.firstErr != nil:
		return fmt.Errorf("send: %s%s; first: %w", t.failures(), cut, t.firstErr)
	case interrupted != nil:
		return fmt.Errorf("send: interrupted after %d of %s: %w", t.exchanges, exchanges(count), interrupted)
	}
	return nil
}
