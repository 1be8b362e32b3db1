# ssl_echo_server_tls.py
#
# The seed's echo server (asyncio_echo_server_coroutine.py) over TLS, with
# Python's ssl module: the same loop (read up to 128 bytes, write them
# back, close at end of stream) and the same log lines, one thread a
# connection.
#
# Why not asyncio: asyncio's SSL transport drops what the application
# writes after the peer's TLS close_notify (CPython's sslproto starts its
# own shutdown on it), so a client that half-closes over TLS, as echoctl
# send and the seed's client do, would get no echo. The ssl module's
# sockets let the server finish writing after recv() returns b'' for the
# close_notify, which is what TLS 1.3 (and echoctl serve) allow.
#
# Usage: python3 ssl_echo_server_tls.py HOST PORT CERTFILE KEYFILE
# PORT 0 picks a free port; the "starting up" line gives the real one.

import logging
import socket
import ssl
import sys
import threading

HOST, PORT, CERTFILE, KEYFILE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

logging.basicConfig(
    level=logging.DEBUG,
    format='%(name)s: %(message)s',
    stream=sys.stderr,
)
log = logging.getLogger('main')

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(CERTFILE, KEYFILE)


def echo(conn, address):
    log = logging.getLogger('echo_{}_{}'.format(*address[:2]))
    log.debug('connection accepted')
    with conn:
        while True:
            data = conn.recv(128)
            if data:
                log.debug('received {!r}'.format(data))
                conn.sendall(data)
                log.debug('sent {!r}'.format(data))
            else:
                log.debug('closing')
                try:
                    conn.unwrap()  # send close_notify
                except (ssl.SSLError, OSError):
                    pass
                return


def handshake(sock, address):
    try:
        conn = context.wrap_socket(sock, server_side=True)
    except (ssl.SSLError, OSError) as e:
        logging.getLogger('echo_{}_{}'.format(*address[:2])).debug('handshake failed: %s', e)
        sock.close()
        return
    echo(conn, address)


listener = socket.create_server((HOST, PORT))
log.debug('starting up on {} port {}'.format(HOST, listener.getsockname()[1]))
try:
    while True:
        sock, address = listener.accept()
        threading.Thread(target=handshake, args=(sock, address), daemon=True).start()
except KeyboardInterrupt:
    pass
finally:
    log.debug('closing server')
    listener.close()
