"""The DLQ tool: pages through any number of letters, one-line errors for wrong numbers."""

from __future__ import annotations

import contextlib
import io

import nats
import pytest

from servicekit import dlq


async def test_list_pages_past_gaps_and_wrong_numbers_are_clear_errors(own_nats) -> None:
    nc = await nats.connect(own_nats.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=dlq.DLQ_STREAM, subjects=[dlq.DLQ_SUBJECTS])
        await js.add_stream(name="ORIGIN", subjects=["gateway.user.created"])
        for i in range(250):
            await js.publish("dlq.toy.count", f"{i}".encode(), headers={
                "Dlq-Original-Subject": "gateway.user.created", "Dlq-Reason": "handler_error"})
        for seq in range(5, 200):  # a long gap, as after a replay of most of them
            await dlq.discard(js, seq)
        first = await dlq.list_dead_letters(js, limit=3)
        assert [r["seq"] for r in first] == [1, 2, 3]
        rest = await dlq.list_dead_letters(js, limit=1000, start=4)
        assert [r["seq"] for r in rest] == [4, *range(200, 251)]
        assert await dlq.count_dead_letters(js) == 55

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            await dlq._main(["list", "--limit", "4", "--nats", own_nats.url])
        lines = out.getvalue().splitlines()
        assert len(lines) == 5 and lines[3].split()[0] == "4"
        assert lines[-1] == "4 shown, 55 in the DLQ; next page: list --from 200"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            await dlq._main(["list", "--from", "250", "--nats", own_nats.url])
        assert out.getvalue().splitlines()[-1] == "1 shown, 55 in the DLQ"

        for command in ("replay", "discard"):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
                await dlq._main([command, "100", "--nats", own_nats.url])
            assert exit_.value.code == 1
            assert err.getvalue() == ("python -m servicekit.dlq: no dead letter 100 "
                                      "(`list` shows the numbers)\n")
        assert await dlq.replay(js, 250) == "gateway.user.created"
        assert await dlq.count_dead_letters(js) == 54
    finally:
        await nc.close()
