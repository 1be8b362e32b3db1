# asyncio_echo_client_coroutine_tls.py
#
# The seed's asyncio streams echo client (asyncio_echo_client_coroutine.py)
# over TLS, with Python's ssl module. Changed from the seed only so that:
#   (a) it connects with TLS: HOST PORT CAFILE [SERVER_NAME] on the command
#       line, verifying the server against CAFILE;
#   (b) it runs on Python 3.11+ (asyncio.new_event_loop, as the TCP copy);
#   (c) it does not wait for the server to close. asyncio's SSL transport
#       cannot half-close: can_write_eof() is False, so the seed skips
#       write_eof() and, reading until end of stream, would wait for ever
#       for a server that waits for its end of stream. Instead it reads
#       until the whole echo has come back, then closes (sending TLS
#       close_notify), which ends the server's side too. This is the
#       documented workaround for TLS clients that cannot half-close
#       (docs/tls.md).
# Logger names and messages are the seed's.
#
# Usage: python3 asyncio_echo_client_coroutine_tls.py HOST PORT CAFILE [SERVER_NAME]

import asyncio
import logging
import ssl
import sys

MESSAGES = [
    b'This is the message. ',
    b'It will be sent ',
    b'in parts.',
]
SERVER_ADDRESS = (sys.argv[1], int(sys.argv[2]))
CAFILE = sys.argv[3]
SERVER_NAME = sys.argv[4] if len(sys.argv) > 4 else sys.argv[1]

logging.basicConfig(
    level=logging.DEBUG,
    format='%(name)s: %(message)s',
    stream=sys.stderr,
)
log = logging.getLogger('main')

event_loop = asyncio.new_event_loop()
asyncio.set_event_loop(event_loop)


async def echo_client(address, messages):

    log = logging.getLogger('echo_client')

    # Change (a): TLS, verified against CAFILE.
    context = ssl.create_default_context(cafile=CAFILE)
    log.debug('connecting to {} port {}'.format(*address))
    reader, writer = await asyncio.open_connection(
        *address, ssl=context, server_hostname=SERVER_NAME)

    for msg in messages:
        writer.write(msg)
        log.debug('sending {!r}'.format(msg))
    if writer.can_write_eof():
        writer.write_eof()
    await writer.drain()

    # Change (c): read until the whole echo is back.
    expected = sum(len(m) for m in messages)
    received = 0
    log.debug('waiting for response')
    while received < expected:
        data = await reader.read(128)
        if data:
            log.debug('received {!r}'.format(data))
            received += len(data)
        else:
            break
    log.debug('closing')
    writer.close()
    await writer.wait_closed()


try:
    event_loop.run_until_complete(
        echo_client(SERVER_ADDRESS, MESSAGES)
    )
finally:
    log.debug('closing event loop')
    event_loop.close()
