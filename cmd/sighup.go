package cmd

import (
	"os"
	"os/signal"
	"syscall"
)

// onSIGHUP calls reload on every SIGHUP, one at a time, until the returned
// function is called, which returns once no reload runs any more. serve
// reloads its TLS certificate files (tls.go) and its faults (faults.go)
// this way, each with a watcher of its own.
func onSIGHUP(reload func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-hup:
				reload()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}
