"""The bounds' building blocks (issue 14): rate limiter, log summary, config keys."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dlep.config import ConfigError, parse_modem_config
from dlep.daemon.limits import LogSummary, RateLimiter


def test_pending_defaults_and_rule() -> None:
    m = parse_modem_config({}, source="<t>").modem
    assert (m.max_pending_connections, m.max_pending_per_source, m.pending_timeout_ms) == (
        32,
        4,
        10_000,
    )
    with pytest.raises(ConfigError) as info:
        parse_modem_config(
            {"modem": {"max_pending_connections": 2, "max_pending_per_source": 3}}, source="<t>"
        )
    assert "max_pending_per_source" in str(info.value)


def test_rate_limiter_bucket_per_key() -> None:
    rl = RateLimiter(rate=1.0, burst=3, max_keys=2)
    assert [rl.allow("a", 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert rl.allow("b", 0.0)  # another key has its own bucket
    assert not rl.allow("a", 0.5)
    assert rl.allow("a", 1.6)  # refilled at 1 a second
    rl.allow("c", 2.0)
    assert len(rl) == 2  # the least recently used key was forgotten


async def test_log_summary_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.limits")
    caplog.set_level(logging.WARNING, "test.limits")
    summary = LogSummary(log, "refusing", interval=0.2)
    loop = asyncio.get_running_loop()
    for i in range(1000):
        summary.note("full", f"10.0.0.{i % 7}", loop)
    assert len(caplog.records) == 1
    await asyncio.sleep(0.3)
    assert len(caplog.records) == 2
    assert "999 more" in caplog.records[1].getMessage()
    await asyncio.sleep(0.3)  # nothing new: no line, and the next is logged at once
    assert len(caplog.records) == 2
    summary.note("full", "x", loop)
    assert len(caplog.records) == 3
    summary.close()
    assert summary.total == 1001
