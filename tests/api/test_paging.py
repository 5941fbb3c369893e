"""ListDestinations a page at a time: tokens, filters, the size bound (issue 14, item 9)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from dlep.api import paging
from dlep.api._pb import management_pb2 as pb
from dlep.api.client import ApiError
from dlep.fsm import DestKey, Metrics
from dlep.wire import format_mac

from .conftest import MAC1, MAC2, Live, dlepctl, until

pytestmark = pytest.mark.timeout(90)


def mac(i: int) -> bytes:
    return b"\x02\x10" + i.to_bytes(4, "big")


# ---------------------------------------------------------------------------
# The page selection itself
# ---------------------------------------------------------------------------


def walk(groups: dict[str, list[Any]], limit: int) -> list[tuple[str, bytes]]:
    """Every page of ``groups`` by following the position of each page's last entry."""
    out: list[tuple[str, bytes]] = []
    after = None
    for _ in range(1000):
        page = paging.select_page(groups.items(), limit, after)
        out += [(s, k) for s, k, _ in page.entries]
        if len(page.entries) >= page.remaining:
            return out
        after = (page.entries[-1][0], page.entries[-1][1])
    raise AssertionError("no end")


def test_pages_are_ordered_by_session_then_key_and_cover_everything() -> None:
    groups: dict[str, list[Any]] = {
        "2": [mac(i) for i in (5, 1, 9, 3)],
        "10": [mac(7), mac(2)],
        "": [DestKey(mac(4)), DestKey(mac(0))],
    }
    got = walk(groups, 2)
    want = sorted((s, k if isinstance(k, bytes) else k.mac) for s, ks in groups.items() for k in ks)
    assert got == want


def test_a_key_token_survives_changes_between_pages() -> None:
    keys = [mac(i) for i in range(10)]
    page = paging.select_page([("1", keys)], 4)
    assert [k for _, k, _ in page.entries] == keys[:4]
    assert page.remaining == 10 and page.total == 10
    after = ("1", page.entries[-1][1])
    # One before the position goes away and one comes: the next page
    # starts right after the last destination given, nothing skipped twice.
    changed = [k for k in keys if k != mac(1)] + [mac(100)]
    nxt = paging.select_page([("1", changed)], 4, after)
    assert [k for _, k, _ in nxt.entries] == keys[4:8]
    assert nxt.remaining == 7  # 4..9 and 100


def test_tokens_round_trip_and_foreign_ones_are_refused() -> None:
    key = paging.sort_key(mac(3))
    assert paging.decode_token(paging.encode_token("12", key)) == ("12", key)
    assert paging.decode_token(paging.encode_token("", key)) == ("", key)
    for bad in ("x", "1!!!", "1" + "QUJD"):  # QUJD: "ABC", no separator
        with pytest.raises(paging.PageTokenError):
            paging.decode_token(bad)


def test_page_size_default_and_cap() -> None:
    assert paging.page_size(0) == paging.DEFAULT_PAGE_SIZE
    assert paging.page_size(5) == 5
    assert paging.page_size(10**9) == paging.MAX_PAGE_SIZE


def test_key_filter() -> None:
    f = paging.parse_key_filter("02:10:00:00:00:03")
    assert f.keeps(mac(3)) and not f.keeps(mac(4))
    with pytest.raises(ValueError):
        paging.parse_key_filter("02:10:00:00:00:0g")
    with pytest.raises(ValueError):
        paging.parse_key_filter("02:10:00:00:00:03#zz")
    exact = paging.parse_key_filter(format_mac(mac(3)).upper() + "#0000000A")
    assert exact.key == format_mac(mac(3)) + "#0000000a"
    assert not exact.keeps(mac(3))  # the bare MAC is another destination


# ---------------------------------------------------------------------------
# Against live daemons
# ---------------------------------------------------------------------------


def test_a_listing_orders_the_table_once_and_pages_from_that_order() -> None:
    """The second page orders everything past its token once and later pages
    take theirs from that order: a listing of 100 pages makes 2 passes over
    the table, not 100 (each was ~15 ms at 100k on the sessions' loop)."""
    groups = {"1": [mac(i) for i in range(0, 2500, 2)], "2": [mac(i) for i in range(1, 2500, 2)]}
    passes = 0

    def source() -> Any:
        nonlocal passes
        passes += 1
        return groups.items()

    cache = paging.ListingCache()
    out: list[tuple[str, bytes]] = []
    token = ""
    now = 0.0
    for _ in range(100):
        page = cache.take(token, "f", 100, now) if token else None
        if page is None:
            after = paging.decode_token(token) if token else None
            pick = paging.ordered_page if token else paging.select_page
            page = pick(source(), 100, after)
        out += [(s, k) for s, k, _ in page.entries]
        more = len(page.entries) < page.remaining
        token = paging.encode_token(*page.entries[-1][:2]) if more else ""
        cache.keep_rest(page, len(page.entries), token, "f", now)
        if not token:
            break
        now += 0.01
    assert out == walk(groups, 100)  # the same order, everything once
    assert len(out) == 2500
    assert passes == 2
    # Another filter, or an expired listing: a fresh order (and still right).
    page = paging.select_page(groups.items(), 100)
    token = paging.encode_token(*page.entries[-1][:2])
    later = paging.ordered_page(groups.items(), 100, paging.decode_token(token))
    cache.keep_rest(later, 100, "tok", "f", 0.0)
    assert cache.take("tok", "other filter", 100, 1.0) is None
    assert cache.take("tok", "f", 100, 1.0 + paging.LISTING_TTL) is None
    assert len(cache) == 0


def test_listing_cache_is_bounded() -> None:
    groups = {"1": [mac(i) for i in range(50)]}
    cache = paging.ListingCache(keep=2)
    for i in range(5):
        page = paging.ordered_page(groups.items(), 10)
        cache.keep_rest(page, 10, f"t{i}", "f", 0.0)
    assert len(cache) == 2
    assert cache.take("t4", "f", 10, 0.0) is not None
    assert cache.take("t0", "f", 10, 0.0) is None


async def fill(live: Live, n: int) -> None:
    for i in range(n):
        await live.modem.add_destination(mac(i), Metrics(cdrr=1000 + i, cdrt=1000))
    await until(lambda: len(live.router_macs()) == n + 2, timeout=30, what="router has all")


async def test_list_destinations_pages_follow_tokens(live: Live) -> None:
    n = 2300
    await fill(live, n)
    c = live.router_client()
    try:
        seen: list[str] = []
        token = ""
        sizes = []
        while True:
            r = await c._unary(
                "ListDestinations",
                pb.ListDestinationsRequest(page_size=1000, page_token=token),
                pb.ListDestinationsResponse,
            )
            assert r.total == n + 2
            sizes.append(len(r.destinations))
            seen += [d.mac for d in r.destinations]
            token = r.next_page_token
            if not token:
                break
        assert sizes == [1000, 1000, 302]
        assert len(seen) == len(set(seen)) == n + 2
        assert seen == sorted(seen)
        # No page_size (an old client): the server's default page and a token.
        r = await c._unary(
            "ListDestinations", pb.ListDestinationsRequest(), pb.ListDestinationsResponse
        )
        assert len(r.destinations) == paging.DEFAULT_PAGE_SIZE and r.next_page_token
        # The client follows the tokens: everything, in order.
        everything = await c.list_destinations()
        assert [d.mac for d in everything] == seen
        # The modem lists its table the same way.
        mc = live.modem_client()
        try:
            assert len(await mc.list_destinations()) == n + 2
        finally:
            await mc.close()
    finally:
        await c.close()


async def test_a_listing_over_the_api_passes_over_the_table_twice(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 2300
    await fill(live, n)
    calls = 0
    real = live.router.destination_keys

    def counting(*a: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*a, **kw)

    monkeypatch.setattr(live.router, "destination_keys", counting)
    c = live.router_client()
    try:
        got = [d.mac async for d in c.iter_destinations(page_size=200)]
    finally:
        await c.close()
    assert len(got) == len(set(got)) == n + 2 and got == sorted(got)
    assert calls == 2  # the first page, then one order for the other 11


async def test_list_destinations_filters(live: Live) -> None:
    c = live.router_client()
    try:
        got = await c.list_destinations(mac=MAC2.upper())
        assert [d.mac for d in got] == [MAC2]
        sid = got[0].session_id
        assert [d.mac for d in await c.list_destinations(sid, mac=MAC1)] == [MAC1]
        assert await c.list_destinations(mac="02:00:00:00:00:99") == []
        for bad, field in (("nonsense", "mac"), ("02:00:00:00:00:01#xyz", "mac")):
            with pytest.raises(ApiError) as ei:
                await c.list_destinations(mac=bad)
            assert ei.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert ei.value.details.startswith(f"{field}: ")
        with pytest.raises(ApiError) as ei:
            await c._unary(
                "ListDestinations",
                pb.ListDestinationsRequest(page_token="bogus"),
                pb.ListDestinationsResponse,
            )
        assert ei.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert ei.value.details.startswith("page_token: ")
    finally:
        await c.close()


async def test_a_page_stays_below_the_size_bound(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(live, 50)
    one = len(pb.Destination(mac=MAC1, key=MAC1, session_id="1").SerializeToString())
    monkeypatch.setattr(paging, "MAX_PAGE_BYTES", 20 * (one + 40))
    c = live.router_client()
    try:
        r = await c._unary(
            "ListDestinations",
            pb.ListDestinationsRequest(page_size=1000),
            pb.ListDestinationsResponse,
        )
        assert 1 <= len(r.destinations) < 52 and r.next_page_token
        assert r.ByteSize() <= paging.MAX_PAGE_BYTES + 64
        assert len(await c.list_destinations()) == 52
    finally:
        await c.close()


async def test_dlepctl_destinations_mac_and_show(live: Live) -> None:
    sock = str(live.router_sock)
    r = await dlepctl("--socket", sock, "destinations", "--mac", MAC2, "--json")
    assert r.code == 0, r.err
    assert [d["mac"] for d in r.json()] == [MAC2]
    r = await dlepctl("--socket", sock, "destinations", "--mac", "zz")
    assert r.code != 0 and "--mac" in r.err
    r = await dlepctl("--socket", sock, "destination", "show", MAC1)
    assert r.code == 0, r.err
    assert MAC1 in r.out and MAC2 not in r.out


async def test_a_modem_without_router_pages_its_own_table(tmp_path: Any) -> None:
    from dlep.api.client import ManagementClient
    from dlep.api.server import ManagementServer
    from dlep.daemon import ModemDaemon

    from .conftest import free_port, modem_config

    cfg = modem_config(free_port(), socket=str(tmp_path / "m.sock"))
    modem = await ModemDaemon.builder().config(cfg).spawn()
    api = ManagementServer(modem, cfg.api)
    await api.start()
    c = ManagementClient.unix(tmp_path / "m.sock", timeout=10)
    try:
        for i in range(25):
            await modem.add_destination(mac(i), Metrics(cdrr=10, cdrt=10))
        r = await c._unary(
            "ListDestinations",
            pb.ListDestinationsRequest(page_size=10),
            pb.ListDestinationsResponse,
        )
        assert len(r.destinations) == 10 and r.total == 27 and r.next_page_token
        assert {d.session_id for d in r.destinations} == {""}
        got = await c.list_destinations()
        assert [d.mac for d in got] == sorted(
            [MAC1, MAC2] + [format_mac(mac(i)) for i in range(25)]
        )
        assert [d.mac for d in await c.list_destinations(mac=format_mac(mac(7)))] == [
            format_mac(mac(7))
        ]
    finally:
        await c.close()
        await api.stop(0.2)
        await modem.shutdown()
