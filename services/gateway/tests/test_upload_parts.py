"""Big uploads reach the tasks service in parts under the bus limit, and no part has more
rows than its reply can list (the reply carries every created task id): 60,000 short rows
fit in one part's bytes, their ids would not fit in one reply."""

from __future__ import annotations

import json

from gateway_service.routes.tasks import (
    MAX_ROWS_PER_PART,
    UPLOAD_CHUNK_BYTES,
    _json_chunks,
    _tsv_chunks,
)


def test_many_short_tsv_rows_are_split_by_count() -> None:
    text = "INPUT:q\n" + "".join(f"{i}\n" for i in range(60_000))
    assert len(text.encode()) < UPLOAD_CHUNK_BYTES  # one part by bytes alone
    parts = _tsv_chunks(text, UPLOAD_CHUNK_BYTES)
    rows = [p.splitlines()[1:] for _, p in parts]
    assert [len(r) for r in rows] == [MAX_ROWS_PER_PART] * 3
    assert all(p.startswith("INPUT:q\n") for _, p in parts)
    assert [o for o, _ in parts] == [0, MAX_ROWS_PER_PART, 2 * MAX_ROWS_PER_PART]
    assert [x for r in rows for x in r] == [str(i) for i in range(60_000)]
    # a reply listing one part's ids stays under 1 MiB
    ids = json.dumps([f"{i:08d}-0000-0000-0000-000000000000" for i in range(len(rows[0]))])
    assert len(ids.encode()) < 1024 * 1024


def test_many_short_json_rows_are_split_by_count_and_small_uploads_stay_whole() -> None:
    rows = [{"q": i} for i in range(45_000)]
    parts = _json_chunks(rows, UPLOAD_CHUNK_BYTES)
    assert [len(p) for _, p in parts] == [20_000, 20_000, 5_000]
    assert [o for o, _ in parts] == [0, 20_000, 40_000]
    assert _tsv_chunks("INPUT:q\na\nb\n", UPLOAD_CHUNK_BYTES) == [(0, "INPUT:q\na\nb\n")]
    assert len(_json_chunks([{"q": 1}] * 10, UPLOAD_CHUNK_BYTES)) == 1
