"""Pure rules of the tasks service: specs, uploads, take limits, captcha cadence, exports.

No I/O here: everything is a function of its arguments, so it is unit-tested in milliseconds.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import re2

from contracts.rpc.tasks import FieldSpec, SkillFilter, TrustLevelLimits

ACTIVE, SUBMITTED, ACCEPTED, REJECTED, SKIPPED, EXPIRED = (
    "ACTIVE", "SUBMITTED", "ACCEPTED", "REJECTED", "SKIPPED", "EXPIRED")
ASSIGNMENT_STATUSES = (ACTIVE, SUBMITTED, ACCEPTED, REJECTED, SKIPPED, EXPIRED)

# "low" = a captcha every 20th take of a worker in the pool, "high" = every 10th.
CAPTCHA_EVERY = {"none": 0, "low": 20, "high": 10}

# Owner-tunable (admin RPC); these are only the first values a fresh database gets.
DEFAULT_TRUST_LIMITS: tuple[TrustLevelLimits, ...] = (
    TrustLevelLimits(level="new", max_active=3, min_pause_s=1.0, assignment_timeout_s=None),
    TrustLevelLimits(level="verified", max_active=10, min_pause_s=0.5, assignment_timeout_s=None),
    TrustLevelLimits(level="trusted", max_active=30, min_pause_s=0.0, assignment_timeout_s=None),
)

POOL_TRANSITIONS = {
    "open": ("draft", "closed"),
    "closed": ("open",),
    "archived": ("draft", "closed"),
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Output patterns come from admins and run on every answer: RE2 matches in linear time (no
# catastrophic backtracking), and refuses what it cannot do so (backreferences, lookaround).
_RE2 = re2.Options()
_RE2.log_errors = False


def compile_pattern(pattern: str) -> Any:
    """A field's pattern compiled by RE2 (cached); raises ``re2.error`` if RE2 refuses it."""
    return re2.compile(pattern, _RE2)


# --------------------------------------------------------------------------- specs


def check_spec(spec: list[FieldSpec], *, which: str) -> list[dict[str, str]]:
    """Problems of a spec itself (names, bounds, regex, allowed values), one dict per problem."""
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    for f in spec:
        where = f"{which}.{f.name}"
        if not _NAME.match(f.name):
            errors.append({"field": where, "error": "name must be letters, digits, underscore"})
        if f.name in seen:
            errors.append({"field": where, "error": "duplicate field name"})
        seen.add(f.name)
        if f.min_length is not None and f.max_length is not None and f.min_length > f.max_length:
            errors.append({"field": where, "error": "min_length is greater than max_length"})
        if f.min_value is not None and f.max_value is not None and f.min_value > f.max_value:
            errors.append({"field": where, "error": "min_value is greater than max_value"})
        if f.pattern is not None:
            try:
                compile_pattern(f.pattern)
            except re2.error as exc:
                reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) \
                    else str(exc)
                errors.append({"field": where,
                               "error": f"pattern is not a valid RE2 regex: {reason}"})
        if f.allowed_values is not None:
            if not f.allowed_values:
                errors.append({"field": where, "error": "allowed_values must not be empty"})
            for v in f.allowed_values:
                _, err = _check_type(f, v, coerce=False)
                if err:
                    errors.append({"field": where, "error": f"allowed value {v!r}: {err}"})
    return errors


def _is_url(v: str) -> bool:
    u = urlparse(v)
    return u.scheme in ("http", "https") and bool(u.netloc)


def _check_type(f: FieldSpec, v: Any, *, coerce: bool) -> tuple[Any, str | None]:
    """The value converted to the field's type, or an error (``coerce``: TSV text cells)."""
    t = f.type
    if t in ("string", "url", "file"):
        if not isinstance(v, str):
            return v, "must be a string"
        if t != "string" and not _is_url(v):
            return v, "must be an http(s) URL"
        return v, None
    if t == "integer":
        if coerce and isinstance(v, str):
            try:
                v = int(v.strip())
            except ValueError:
                return v, "must be an integer"
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            return v, "must be an integer"
        return v, None
    if t == "number":
        if coerce and isinstance(v, str):
            try:
                v = float(v.strip())
            except ValueError:
                return v, "must be a number"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return v, "must be a number"
        return v, None
    if t == "boolean":
        if coerce and isinstance(v, str):
            low = v.strip().lower()
            if low in ("true", "1", "yes"):
                return True, None
            if low in ("false", "0", "no"):
                return False, None
        if not isinstance(v, bool):
            return v, "must be true or false"
        return v, None
    if t == "json":
        if coerce and isinstance(v, str):
            try:
                return json.loads(v), None
            except ValueError:
                return v, "must be valid JSON"
        return v, None
    return v, f"unknown type {t}"


def check_value(f: FieldSpec, v: Any, *, coerce: bool = False) -> tuple[Any, str | None]:
    """One present (non-empty) value against its field spec."""
    v, err = _check_type(f, v, coerce=coerce)
    if err:
        return v, err
    if f.allowed_values is not None and v not in f.allowed_values:
        return v, f"must be one of {f.allowed_values}"
    if isinstance(v, str):
        if f.min_length is not None and len(v) < f.min_length:
            return v, f"must be at least {f.min_length} characters"
        if f.max_length is not None and len(v) > f.max_length:
            return v, f"must be at most {f.max_length} characters"
        if f.pattern is not None and not _matches(f.pattern, v):
            return v, f"must match {f.pattern}"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if f.min_value is not None and v < f.min_value:
            return v, f"must be at least {f.min_value:g}"
        if f.max_value is not None and v > f.max_value:
            return v, f"must be at most {f.max_value:g}"
    return v, None


def _matches(pattern: str, v: str) -> bool:
    try:
        return compile_pattern(pattern).fullmatch(v) is not None
    except re2.error:  # a spec stored before patterns were checked by RE2: nothing matches
        return False


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v == "")


def validate_values(spec: list[FieldSpec], values: dict[str, Any], *,
                    coerce: bool = False) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Values checked against a spec: the clean values and an error per bad field."""
    clean: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    by_name = {f.name: f for f in spec}
    for name in values:
        if name not in by_name:
            errors.append({"field": name, "error": "unknown field"})
    for f in spec:
        v = values.get(f.name)
        if _missing(v):
            if f.required:
                errors.append({"field": f.name, "error": "required"})
            continue
        v, err = check_value(f, v, coerce=coerce)
        if err:
            errors.append({"field": f.name, "error": err})
        else:
            clean[f.name] = v
    return clean, errors


def _norm(v: Any) -> Any:
    if isinstance(v, str):
        return v.strip().casefold()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def control_correct(control_answers: dict[str, Any] | None, answers: dict[str, Any]) -> bool | None:
    """Whether answers match a control task's known answers (None: not a control task).

    Strings compare trimmed and case-insensitively; only the fields with a known answer count.
    """
    if not control_answers:
        return None
    return all(_norm(answers.get(k)) == _norm(v) for k, v in control_answers.items())


# -------------------------------------------------------------------------- upload


@dataclass
class ParsedRow:
    line: int
    input: dict[str, Any]
    control: dict[str, Any] | None


@dataclass
class ParsedUpload:
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _split_row(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if "input_values" in raw and isinstance(raw["input_values"], dict):
        golden = raw.get("known_solutions") or {}
        if not isinstance(golden, dict):
            golden = {"known_solutions": golden}
        extra = {k: v for k, v in raw.items() if k not in ("input_values", "known_solutions")}
        return {**raw["input_values"], **extra}, golden
    inputs: dict[str, Any] = {}
    golden = {}
    for k, v in raw.items():
        key = str(k)
        up = key.upper()
        if up.startswith("GOLDEN:"):
            golden[key[7:]] = v
        elif up.startswith("INPUT:"):
            inputs[key[6:]] = v
        else:
            inputs[key] = v
    return inputs, golden


def _fmt_errors(errs: list[dict[str, str]]) -> str:
    return "; ".join(f"{e['field']}: {e['error']}" for e in errs)


def parse_upload(fmt: str, content: str | list[Any], input_spec: list[FieldSpec],
                 output_spec: list[FieldSpec], *, max_rows: int = 100_000) -> ParsedUpload:
    """Parse and check uploaded rows; bad rows are reported by line (JSON: item number)."""
    out = ParsedUpload()
    items: list[tuple[int, Any]] = []
    coerce = fmt == "tsv"
    if fmt == "json":
        data = content
        if isinstance(content, str):
            try:
                data = json.loads(content)
            except ValueError as exc:
                out.errors.append({"line": 0, "error": f"not valid JSON: {exc}"})
                return out
        if not isinstance(data, list):
            out.errors.append({"line": 0, "error": "JSON must be a list of objects"})
            return out
        items = list(enumerate(data, start=1))
    else:
        if not isinstance(content, str):
            out.errors.append({"line": 0, "error": "TSV content must be text"})
            return out
        lines = content.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            out.errors.append({"line": 1, "error": "empty file: a header row is required"})
            return out
        header = [h.strip() for h in lines[0].split("\t")]
        if len(set(header)) != len(header) or any(not h for h in header):
            out.errors.append({"line": 1, "error": "header has empty or duplicate column names"})
            return out
        for n, text in enumerate(lines[1:], start=2):
            if not text.strip():
                continue
            cells = text.split("\t")
            if len(cells) != len(header):
                out.errors.append({"line": n, "error": f"expected {len(header)} columns, "
                                                       f"got {len(cells)}"})
                continue
            items.append((n, dict(zip(header, cells, strict=True))))
    if not items and not out.errors:
        out.errors.append({"line": 0, "error": "no rows to upload"})
    if len(items) > max_rows:
        out.errors.append({"line": 0, "error": f"at most {max_rows} rows per upload"})
        return out
    for n, raw in items:
        if not isinstance(raw, dict):
            out.errors.append({"line": n, "error": "row must be an object"})
            continue
        inputs, golden = _split_row(raw)
        clean, errs = validate_values(input_spec, inputs, coerce=coerce)
        if errs:
            out.errors.append({"line": n, "error": _fmt_errors(errs)})
            continue
        control = None
        if golden:
            gold_spec = [f.model_copy(update={"required": False}) for f in output_spec]
            control, gerrs = validate_values(gold_spec, golden, coerce=coerce)
            if gerrs:
                out.errors.append({"line": n, "error": "control answer: " + _fmt_errors(gerrs)})
                continue
            control = control or None
        out.rows.append(ParsedRow(n, clean, control))
    return out


# ---------------------------------------------------------------- who may take what


def skills_pass(filters: list[SkillFilter], skills: dict[str, int]) -> bool:
    """All of a pool's skill filters hold for the worker's skills."""
    for f in filters:
        if f.op == "absent":
            if f.skill in skills:
                return False
        elif skills.get(f.skill) is None or skills[f.skill] < (f.value or 0):
            return False
    return True


@dataclass(frozen=True)
class ActiveRestriction:
    restriction_id: str
    scope: str
    pool_id: str | None
    project_id: str | None
    until: datetime | None


def blocking_restriction(restrictions: list[ActiveRestriction], *, pool_id: str,
                         project_id: str, now: datetime) -> ActiveRestriction | None:
    """The restriction (in force at ``now``) that keeps the worker out of the pool, if any."""
    for r in restrictions:
        if r.until is not None and r.until <= now:
            continue
        if (r.scope == "all" or (r.scope == "pool" and r.pool_id == pool_id)
                or (r.scope == "project" and r.project_id == project_id)):
            return r
    return None


@dataclass(frozen=True)
class TakeRefusal:
    limit: str
    current: float
    max: float
    retry_after_s: float | None
    frees_at: datetime | None

    def message(self) -> str:
        if self.limit == "max_active":
            return (f"you already hold {int(self.current)} active assignments, the most your "
                    f"trust level allows ({int(self.max)}); submit or skip one first")
        return (f"wait {self.retry_after_s:.1f}s: your trust level requires {self.max:g}s "
                f"between takes")

    def details(self) -> dict[str, Any]:
        return {"limit": self.limit, "current": self.current, "max": self.max,
                "retry_after_s": self.retry_after_s,
                "frees_at": self.frees_at.isoformat() if self.frees_at else None}


def check_take_limits(limits: TrustLevelLimits, *, active: int, earliest_deadline: datetime | None,
                      last_take_at: datetime | None, now: datetime) -> TakeRefusal | None:
    """The first trust-level limit a take would break now, or None."""
    if active >= limits.max_active:
        retry = (max(0.0, (earliest_deadline - now).total_seconds())
                 if earliest_deadline else None)
        return TakeRefusal("max_active", active, limits.max_active,
                           round(retry, 3) if retry is not None else None, earliest_deadline)
    if last_take_at is not None and limits.min_pause_s > 0:
        since = (now - last_take_at).total_seconds()
        if since < limits.min_pause_s:
            frees = last_take_at + timedelta(seconds=limits.min_pause_s)
            return TakeRefusal("min_pause", round(since, 3), limits.min_pause_s,
                               round(limits.min_pause_s - since, 3), frees)
    return None


def assignment_timeout(pool_timeout_s: int, trust_timeout_s: int | None) -> int:
    """The trust level's timeout wins only when it is shorter than the pool's."""
    if trust_timeout_s is not None and trust_timeout_s < pool_timeout_s:
        return trust_timeout_s
    return pool_timeout_s


# ------------------------------------------------------------------------- captcha


def captcha_due(frequency: str, take_number: int) -> bool:
    """Whether the worker's ``take_number``-th take in a pool must first pass a captcha."""
    every = CAPTCHA_EVERY.get(frequency, 0)
    return every > 0 and take_number > 0 and take_number % every == 0


# No 0/O, 1/I/L: they are hard to tell apart in a distorted image.
_CAPTCHA_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def captcha_text(length: int = 5) -> str:
    return "".join(secrets.choice(_CAPTCHA_ALPHABET) for _ in range(length))


def captcha_matches(expected: str, answer: str) -> bool:
    return secrets.compare_digest(expected.strip().casefold().encode(),
                                  answer.strip().casefold().encode())


# -------------------------------------------------------------------------- export

CONTENT_TYPES = {"csv": "text/csv", "tsv": "text/tab-separated-values",
                 "json": "application/json"}


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v)


def results_header(fmt: str, *, input_fields: list[str], output_fields: list[str],
                   methods: tuple[str, ...] = ()) -> str:
    """The first line of a CSV/TSV results file (JSON has none): the raw answer, then the
    golden flag, decision time and reviewer, then per aggregation method and output field
    the aggregated answer and its confidence."""
    if fmt == "json":
        return ""
    return _lines([["ASSIGNMENT:assignment_id", "ASSIGNMENT:task_id", "ASSIGNMENT:worker_id",
                    "ASSIGNMENT:status"] + [f"INPUT:{f}" for f in input_fields]
                   + [f"OUTPUT:{f}" for f in output_fields]
                   + ["ASSIGNMENT:comment", "ASSIGNMENT:proof", "ASSIGNMENT:started",
                      "ASSIGNMENT:submitted", "ASSIGNMENT:golden", "ASSIGNMENT:decided",
                      "ASSIGNMENT:reviewer"]
                   + [f"RESULT:{m}:{f}{part}" for m in methods for f in output_fields
                      for part in ("", ":confidence")]], fmt)[0]


def _lines(cells: list[list[str]], fmt: str) -> list[str]:
    buf = io.StringIO()
    if fmt == "tsv":
        w = csv.writer(buf, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    else:
        w = csv.writer(buf, lineterminator="\r\n")
    out = []
    for row in cells:
        w.writerow(row)
        out.append(buf.getvalue())
        buf.seek(0)
        buf.truncate()
    return out


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v else None


# (task_id, method, field) -> (aggregated answer, confidence)
Aggregates = dict[tuple[str, str, str], tuple[Any, float]]


def result_rows(rows: list[dict[str, Any]], fmt: str, *, input_fields: list[str],
                output_fields: list[str], methods: tuple[str, ...] = (),
                aggregates: Aggregates | None = None) -> list[str]:
    """Each row as text: a CSV/TSV line, or a JSON object. Each row: assignment_id,
    task_id, worker_id, status, input, answers, comment, proof, started_at, submitted_at,
    golden, decided_at, reviewer (UTC datetimes); then the task's aggregated answers."""
    agg = aggregates or {}
    if fmt == "json":
        return [json.dumps({
            "assignment_id": r["assignment_id"], "task_id": r["task_id"],
            "worker_id": r["worker_id"], "status": r["status"], "input": r["input"],
            "answers": r["answers"], "comment": r["comment"], "proof": r["proof"],
            "started_at": _iso(r["started_at"]), "submitted_at": _iso(r["submitted_at"]),
            "golden": bool(r.get("golden")), "decided_at": _iso(r.get("decided_at")),
            "reviewer": r.get("reviewer"),
            "results": {m: {f: {"answer": a[0], "confidence": a[1]}
                            for f in output_fields
                            if (a := agg.get((r["task_id"], m, f))) is not None}
                        for m in methods},
        }, ensure_ascii=False) for r in rows]
    cells = []
    for r in rows:
        inp = r["input"] or {}
        ans = r["answers"] or {}
        aggregated = []
        for m in methods:
            for f in output_fields:
                a = agg.get((r["task_id"], m, f))
                aggregated += [_cell(a[0]), f"{a[1]:.4f}"] if a else ["", ""]
        cells.append([r["assignment_id"], r["task_id"], r["worker_id"], r["status"]]
                     + [_cell(inp.get(f)) for f in input_fields]
                     + [_cell(ans.get(f)) for f in output_fields]
                     + [_cell(r["comment"]), _cell(r["proof"]), _cell(r["started_at"]),
                        _cell(r["submitted_at"]), _cell(bool(r.get("golden"))),
                        _cell(r.get("decided_at")), _cell(r.get("reviewer"))]
                     + aggregated)
    return _lines(cells, fmt)



def results_page(header: str, lines: Iterable[str], fmt: str, *,
                 max_bytes: int) -> tuple[str, int]:
    """One page of a results file: the header (first page only) and as many ``lines`` as
    fit in ``max_bytes`` of text (at least one); the content and how many lines it took."""
    size, taken = len(header), list[str]()
    for line in lines:
        if taken and size + len(line) + 2 > max_bytes:
            break  # the rest goes in the next page
        taken.append(line)
        size += len(line) + 2
    if fmt == "json":
        return "[" + ", ".join(taken) + "]", len(taken)
    return header + "".join(taken), len(taken)


def proof_of(url: str | None, text: str | None) -> str | None:
    """A submission's proof as stored: the link, the text, or both on two lines."""
    if not text:
        return url
    return f"{url}\n{text}" if url else text



# ------------------------------------------------------------------ fair pay: the pace


def histogram_median(counts: Iterable[tuple[int, int]]) -> tuple[int, float | None]:
    """(how many, their median) of durations given as (seconds, how many) pairs in any
    order: the middle one, or the mean of the two middle ones (a half second at most)."""
    pairs = sorted((s, n) for s, n in counts if n > 0)
    total = sum(n for _, n in pairs)
    if total == 0:
        return 0, None
    lower_rank, upper_rank = (total + 1) // 2, total // 2 + 1  # 1-based ranks of the middle
    lower = upper = None
    seen = 0
    for seconds, n in pairs:
        seen += n
        if lower is None and seen >= lower_rank:
            lower = seconds
        if seen >= upper_rank:
            upper = seconds
            break
    assert lower is not None and upper is not None
    return total, (lower + upper) / 2
