# asyncio_echo_server_coroutine.py
#
# The PyMOTW-3 asyncio streams echo server, transcribed from the seed text
# (/work/shared/seed/000_8953633d47c64f6d.txt). Changed only so that:
#   (a) SERVER_ADDRESS may be given on the command line: HOST PORT;
#   (b) it runs on Python 3.11+ without a DeprecationWarning: the event
#       loop is made with asyncio.new_event_loop() + set_event_loop()
#       instead of asyncio.get_event_loop();
#   (c) --quiet sets the log level to WARNING (for benchmarks).
# Logger names and messages are the seed's.
#
# Usage: python3 asyncio_echo_server_coroutine.py [--quiet] [HOST PORT]

import asyncio
import logging
import sys

SERVER_ADDRESS = ('localhost', 10000)

# Changes (a) and (c): command-line overrides.
_args = [a for a in sys.argv[1:] if a != '--quiet']
_quiet = '--quiet' in sys.argv[1:]
if len(_args) >= 2:
    SERVER_ADDRESS = (_args[0], int(_args[1]))

logging.basicConfig(
    level=logging.WARNING if _quiet else logging.DEBUG,
    format='%(name)s: %(message)s',
    stream=sys.stderr,
)
log = logging.getLogger('main')

# Change (b): asyncio.get_event_loop() is deprecated without a running loop.
event_loop = asyncio.new_event_loop()
asyncio.set_event_loop(event_loop)


async def echo(reader, writer):
    address = writer.get_extra_info('peername')
    log = logging.getLogger('echo_{}_{}'.format(*address))
    log.debug('connection accepted')

    while True:
        data = await reader.read(128)

        if data:
            log.debug('received {!r}'.format(data))
            writer.write(data)
            await writer.drain()
            log.debug('sent {!r}'.format(data))

        else:
            log.debug('closing')
            writer.close()
            return


# Create the server and let the loop finish the coroutine before
# starting the real event loop.
factory = asyncio.start_server(echo, *SERVER_ADDRESS)
server = event_loop.run_until_complete(factory)
log.debug('starting up on {} port {}'.format(*SERVER_ADDRESS))

# Enter the event loop permanently to handle all connections.
try:
    event_loop.run_forever()
except KeyboardInterrupt:
    pass
finally:
    log.debug('closing server')
    server.close()
    event_loop.run_until_complete(server.wait_closed())
    log.debug('closing event loop')
    event_loop.close()
