"""What a large destination table costs the management API.

Run: ``.venv/bin/python bench/api_list.py`` (100,000 destinations, about a
minute; ``--quick``: 20,000). Prints figures, never fails.

A ``ModemDaemon`` and a ``RouterDaemon`` in one process on loopback (plain
TCP, discovery off), the router's management API on a Unix socket. The
modem brings up N destinations; then, against the router's API:

* **ListDestinations, one page**: the first, a middle and the last page
  of the default size (1,000) and of the largest (10,000), time per call
  (the server orders the keys past the token and converts the page);
* **every destination**: ``ManagementClient.list_destinations()``, which
  follows the page tokens (10,000 a page), total time and the largest
  response;
* **a filtered listing**: ``mac=`` one destination.

And ``DropDestination`` at the router, ``AddDestination`` at the modem, per
call at that table size (compare with ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from dlep.api._pb import management_pb2 as pb
from dlep.api.client import ManagementClient
from dlep.api.server import ManagementServer
from dlep.config import parse_modem_config, parse_router_config
from dlep.daemon import ModemDaemon, RouterDaemon
from dlep.fsm import Metrics
from dlep.wire import format_mac


def mac(i: int) -> bytes:
    return b"\x02\x40" + i.to_bytes(4, "big")


def configs(port: int, tmp: Path) -> tuple[Any, Any]:
    timers = {"allow_fast_timers": True, "heartbeat_interval_ms": 1000}
    m = parse_modem_config(
        {
            "network": {"listen_addresses": ["127.0.0.1"], "tcp_port": port},
            "timers": timers,
            "api": {"socket": str(tmp / "m.sock")},
            "logging": {"level": "warning"},
            "modem": {"session_metrics": {"mdrr": "100M", "mdrt": "100M"}},
        }
    )
    r = parse_router_config(
        {
            "network": {"tcp_port": port},
            "timers": timers,
            "api": {"socket": str(tmp / "r.sock")},
            "logging": {"level": "warning"},
            "router": {"discovery": False, "static_peers": [f"127.0.0.1:{port}"]},
        }
    )
    return m, r


async def page(c: ManagementClient, size: int, token: str = "") -> pb.ListDestinationsResponse:
    return await c._unary(
        "ListDestinations",
        pb.ListDestinationsRequest(page_size=size, page_token=token),
        pb.ListDestinationsResponse,
    )


async def timed(coro: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = await coro
    return out, (time.perf_counter() - t0) * 1000


async def main(n: int) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp())
    mcfg, rcfg = configs(port, tmp)
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = await RouterDaemon.builder().config(rcfg).spawn()
    rapi, mapi = ManagementServer(router, rcfg.api), ManagementServer(modem, mcfg.api)
    await rapi.start()
    await mapi.start()
    try:
        while not any(s.state == "in-session" for s in router.sessions()):
            await asyncio.sleep(0.05)
        for i in range(n):
            await modem.add_destination(mac(i), Metrics(cdrr=1000, cdrt=1000))
            if i % 2000 == 0:
                await asyncio.sleep(0)
        while sum(s.destinations for s in router.sessions()) < n:
            await asyncio.sleep(0.1)
        c = ManagementClient.unix(tmp / "r.sock", timeout=60)
        print(f"{n} destinations at the router")
        for size in (1000, 10_000):
            first, t_first = await timed(page(c, size))
            # A token from the middle and one near the end, from real pages.
            tok, mid_tok, last_tok = first.next_page_token, "", ""
            pages = 1
            while tok:
                r = await page(c, size, tok)
                pages += 1
                if pages == max(2, (n // size) // 2):
                    mid_tok = tok
                if r.next_page_token:
                    last_tok = r.next_page_token
                tok = r.next_page_token
            _, t_mid = await timed(page(c, size, mid_tok))
            _, t_last = await timed(page(c, size, last_tok))
            print(
                f"  page of {size}: first {t_first:.1f} ms, middle {t_mid:.1f} ms, "
                f"last {t_last:.1f} ms; {pages} pages, "
                f"{first.ByteSize() / 1e6:.2f} MB a full page"
            )
        everything, t_all = await timed(c.list_destinations())
        print(f"  client.list_destinations(): {len(everything)} in {t_all:.0f} ms")
        one, t_one = await timed(c.list_destinations(mac=format_mac(mac(n // 2))))
        print(f"  mac filter: {len(one)} in {t_one:.1f} ms")
        k = 100
        t0 = time.perf_counter()
        for j in range(k):
            await c.drop_destination(format_mac(mac(j)))
        print(f"  DropDestination at the router: {(time.perf_counter() - t0) / k * 1000:.2f} ms")
        await c.close()
        mc = ManagementClient.unix(tmp / "m.sock", timeout=60)
        k = 200
        t0 = time.perf_counter()
        for j in range(k):
            await mc.add_destination(format_mac(b"\x02\x41" + j.to_bytes(4, "big")))
        print(f"  AddDestination at the modem: {(time.perf_counter() - t0) / k * 1000:.2f} ms")
        await mc.close()
    finally:
        await rapi.stop(0.2)
        await mapi.stop(0.2)
        await router.shutdown()
        await modem.shutdown()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="20,000 destinations")
    p.add_argument("-n", type=int, default=None, help="destinations (default 100,000)")
    a = p.parse_args()
    asyncio.run(main(a.n or (20_000 if a.quick else 100_000)))
