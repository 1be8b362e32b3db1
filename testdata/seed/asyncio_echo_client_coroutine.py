# asyncio_echo_client_coroutine.py
#
# The PyMOTW-3 asyncio streams echo client, transcribed from the seed text
# (/work/shared/seed/000_8953633d47c64f6d.txt). Changed only so that:
#   (a) SERVER_ADDRESS may be given on the command line: HOST PORT;
#   (b) it runs on Python 3.11+ without a DeprecationWarning: the event
#       loop is made with asyncio.new_event_loop() + set_event_loop()
#       instead of asyncio.get_event_loop().
# Logger names and messages are the seed's.
#
# Usage: python3 asyncio_echo_client_coroutine.py [HOST PORT]

import asyncio
import logging
import sys

MESSAGES = [
    b'This is the message. ',
    b'It will be sent ',
    b'in parts.',
]
SERVER_ADDRESS = ('localhost', 10000)

# Change (a): command-line override.
if len(sys.argv) >= 3:
    SERVER_ADDRESS = (sys.argv[1], int(sys.argv[2]))

logging.basicConfig(
    level=logging.DEBUG,
    format='%(name)s: %(message)s',
    stream=sys.stderr,
)
log = logging.getLogger('main')

# Change (b): asyncio.get_event_loop() is deprecated without a running loop.
event_loop = asyncio.new_event_loop()
asyncio.set_event_loop(event_loop)


async def echo_client(address, messages):

    log = logging.getLogger('echo_client')

    log.debug('connecting to {} port {}'.format(*address))
    reader, writer = await asyncio.open_connection(*address)

    # This could be writer.writelines() except that
    # would make it harder to show each part of the message
    # being sent.
    for msg in messages:
        writer.write(msg)
        log.debug('sending {!r}'.format(msg))
    if writer.can_write_eof():
        writer.write_eof()
    await writer.drain()

    log.debug('waiting for response')
    while True:
        data = await reader.read(128)
        if data:
            log.debug('received {!r}'.format(data))
        else:
            log.debug('closing')
            writer.close()
            return


try:
    event_loop.run_until_complete(
        echo_client(SERVER_ADDRESS, MESSAGES)
    )
finally:
    log.debug('closing event loop')
    event_loop.close()
