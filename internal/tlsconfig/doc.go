// Package tlsconfig builds the TLS configurations of echoctl's serve and
// send commands from PEM files: a server certificate that can be reloaded
// while serving (SIGHUP), the client CA pool of mutual TLS, an in-memory
// self-signed certificate for quick tests, and the client's roots and
// certificate.
//
// Every configuration negotiates TLS 1.2 at least. Errors that come from a
// file are *FileError values naming the file's role ("certificate", "key",
// "client CA", "CA"), so that echoctl can say which setting is wrong.
package tlsconfig
