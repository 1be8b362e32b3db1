package tlsconfig

import "github.com/echoctl/echoctl/internal/regfile"

// maxFileSize bounds what is read of a PEM file. A certificate chain or a
// key takes a few KiB, a system's whole CA bundle about 200 KiB; a path to
// something huge or endless (/dev/zero) fails rather than filling memory.
const maxFileSize = 4 << 20

// readFile reads a certificate, key or CA file: the one place this package
// reads files. It reads only regular files, of at most maxFileSize bytes
// (regfile.Read): a FIFO would block the read (and with it a SIGHUP
// reload, and then shutdown) until something writes it, and a device may
// never end.
func readFile(name string) ([]byte, error) {
	return regfile.Read(name, maxFileSize, "a PEM file")
}
