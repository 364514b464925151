#!/usr/bin/env python3
"""A TCP proxy that adds a fixed delay each way, for transfer benchmarks over
a long-distance link on one machine (no netem here).

    delay_proxy.py LISTEN_PORT TARGET_PORT ONE_WAY_MS [--ftp] [--cut-data-after BYTES]

Each chunk read from one side is written to the other ONE_WAY_MS later, in
order; at most WINDOW bytes are held per direction, as a TCP window would,
so a client that waits for answers (SFTP read requests) sees the round trip.
With --ftp, the control connection's passive-mode replies (227 and 229) are
rewritten to point at a delayed proxy of the data port; --cut-data-after cuts
the first data connection that brings more than BYTES from the server (a link dropping
mid-download, for the fault tests). Prints "ready" once listening."""
import asyncio
import re
import sys

WINDOW = 4 << 20
CHUNK = 64 << 10
# Data connections still to cut, and after how many bytes from the server.
CUT = {"left": 0, "after": 0}


async def pump(reader, writer, delay, rewrite=None, cuttable=False):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue(maxsize=WINDOW // CHUNK)

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            writer.close()

    sender = asyncio.create_task(send())
    passed = 0
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            # Listings are data connections too: only one that grows past
            # the threshold is cut.
            if cuttable and CUT["left"] > 0 and passed + len(data) > CUT["after"]:
                CUT["left"] -= 1
                writer.transport.abort()
                sender.cancel()
                return
            passed += len(data)
            if rewrite:
                data = await rewrite(data)
            await queue.put((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    await queue.put((0, None))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def serve(listen_port, target_port, delay, ftp, data=False):
    async def on_client(c_reader, c_writer):
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            c_writer.close()
            return
        rewrite = passive_rewriter(delay) if ftp else None
        await asyncio.gather(pump(c_reader, s_writer, delay), pump(s_reader, c_writer, delay, rewrite, data))
        c_writer.close()
        s_writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", listen_port)
    return server


def passive_rewriter(delay):
    async def rewrite(data):
        text = data.decode("latin-1")
        m = re.search(r"227 [^(]*\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", text)
        if m:
            port = int(m.group(5)) * 256 + int(m.group(6))
            local = await data_proxy(port, delay)
            text = text.replace(m.group(0), f"227 Entering Passive Mode (127,0,0,1,{local // 256},{local % 256})")
        m = re.search(r"229 [^(]*\(\|\|\|(\d+)\|\)", text)
        if m:
            local = await data_proxy(int(m.group(1)), delay)
            text = text.replace(m.group(0), f"229 Entering Extended Passive Mode (|||{local}|)")
        return text.encode("latin-1")

    return rewrite


async def data_proxy(target_port, delay):
    server = await serve(0, target_port, delay, False, data=True)
    return server.sockets[0].getsockname()[1]


async def main():
    listen_port, target_port, one_way_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    if "--cut-data-after" in sys.argv:
        CUT["left"], CUT["after"] = 1, int(sys.argv[sys.argv.index("--cut-data-after") + 1])
    server = await serve(listen_port, target_port, one_way_ms / 1000, "--ftp" in sys.argv)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
