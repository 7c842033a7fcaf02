#!/usr/bin/env python3
"""A RELP collector for the tests that behaves as real ones do when they go wrong: it
answers the session's `open` (offering `syslog`, or not), then answers the first ANSWERED
syslog messages and nothing after them, reading on without a word (a wedged collector);
with --then-500, it answers the rest `500 queue full` instead (a collector that refuses);
with --then-serverclose, it ends the session instead (a collector shutting down).
Prints its port.

Usage: fake-relp.py ANSWERED [--no-syslog] [--then-500 | --then-serverclose]
"""
import socket
import sys
import threading

answered = int(sys.argv[1])
offers = "relp_version=0\nrelp_software=fake-relp\ncommands=" + ("" if "--no-syslog" in sys.argv else "syslog")


def frames(conn):
    buffer = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while True:
            parts = buffer.split(b" ", 3)
            if len(parts) < 3:
                break
            txnr, command = parts[0], parts[1]
            rest = buffer[len(txnr) + len(command) + 2:]
            digits = rest.split(b" ", 1)[0].split(b"\n", 1)[0]
            if not digits.isdigit() or len(rest) <= len(digits):
                break
            length = int(digits)
            start = len(digits) + (1 if length > 0 else 0)
            if len(rest) < start + length + 1:
                break
            yield int(txnr), command.decode()
            buffer = rest[start + length + 1:]


def serve(conn):
    count = 0
    with conn:
        for txnr, command in frames(conn):
            if command == "open":
                data = ("200 OK\n" + offers).encode()
                conn.sendall(b"%d rsp %d %s\n" % (txnr, len(data), data))
            elif command == "syslog":
                count += 1
                if count <= answered:
                    conn.sendall(b"%d rsp 6 200 OK\n" % txnr)
                elif "--then-500" in sys.argv:
                    conn.sendall(b"%d rsp 14 500 queue full\n" % txnr)
                elif "--then-serverclose" in sys.argv:
                    conn.sendall(b"0 serverclose 0\n")
                    return


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
print(listener.getsockname()[1], flush=True)
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
