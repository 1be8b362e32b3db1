#!/usr/bin/env python3
"""A UDP echo server that loses, reorders and duplicates on purpose.

It reads the sequence number echoctl bench puts at bytes 8-15 of each
datagram (big-endian) and, per client address, for sequence number s:

  - s % 10 == 5: drops it (never echoed);
  - s % 7 == 3: holds it, and echoes it after the next datagram that
    arrives from that client (a swap), or after 500 ms with none;
  - s % 13 == 0: echoes it twice.

A dropped datagram is neither held nor duplicated. The tests compute the
counts echoctl bench must report from these rules.

Usage: udp_lossy_echo.py [PORT]  (0 or none: a free port). It listens on
127.0.0.1 and prints "listening on 127.0.0.1:PORT" once bound.
"""
import select
import socket
import struct
import sys
import time

HOLD_FOR = 0.5


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    print("listening on %s:%d" % sock.getsockname(), flush=True)
    held = {}  # client address -> (datagram, copies, held since)
    while True:
        timeout = None
        if held:
            oldest = min(since for _, _, since in held.values())
            timeout = max(0.0, oldest + HOLD_FOR - time.monotonic())
        ready, _, _ = select.select([sock], [], [], timeout)
        if ready:
            data, peer = sock.recvfrom(65536)
            if len(data) < 16:
                continue
            (seq,) = struct.unpack(">Q", data[8:16])
            if seq % 10 == 5:
                continue
            copies = 2 if seq % 13 == 0 else 1
            release = held.pop(peer, None)
            if seq % 7 == 3:
                held[peer] = (data, copies, time.monotonic())
            else:
                for _ in range(copies):
                    sock.sendto(data, peer)
            if release is not None:
                for _ in range(release[1]):
                    sock.sendto(release[0], peer)
        now = time.monotonic()
        for peer in [p for p, (_, _, since) in held.items() if now - since >= HOLD_FOR]:
            data, copies, _ = held.pop(peer)
            for _ in range(copies):
                sock.sendto(data, peer)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
