#!/usr/bin/env python3
"""A TCP relay for the tests that cuts connections the way a collector restart, a load
balancer's idle cut or a proxy's reset does: after every BYTES bytes forwarded from the
client, both sides are reset (RST, SO_LINGER 0) and the chunk read but not forwarded is
thrown away. After RESETS resets it only forwards. Prints its port, then one line per reset.

Usage: reset-relay.py UPSTREAM_PORT BYTES RESETS
"""
import asyncio
import socket
import struct
import sys

upstream_port, every, resets = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
idle = int(sys.argv[4]) / 1000 if len(sys.argv) > 4 else None
state = {"resets": 0}


def reset(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def pipe(reader, writer, counted, peer):
    forwarded = 0
    try:
        while True:
            if counted and idle is not None:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), idle)
                except asyncio.TimeoutError:
                    print("idle close", flush=True)
                    writer.close()
                    peer.close()
                    return
            else:
                chunk = await reader.read(65536)
            if not chunk:
                break
            if counted and state["resets"] < resets and forwarded + len(chunk) > every:
                state["resets"] += 1
                print(f"reset {state['resets']} after {forwarded} bytes", flush=True)
                reset(writer)
                reset(peer)
                return
            writer.write(chunk)
            await writer.drain()
            forwarded += len(chunk)
    except (ConnectionError, OSError):
        pass
    try:
        writer.close()
    except OSError:
        pass


async def serve(client_reader, client_writer):
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        reset(client_writer)
        return
    await asyncio.gather(
        pipe(client_reader, up_writer, True, client_writer),
        pipe(up_reader, client_writer, False, up_writer),
    )


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
