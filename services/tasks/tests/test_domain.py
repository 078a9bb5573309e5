"""Pure rules of the tasks service: no I/O, milliseconds."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from contracts.rpc.tasks import FieldSpec, SkillFilter, TrustLevelLimits
from tasks_service import domain

INPUT = [FieldSpec(name="image", type="url"), FieldSpec(name="n", type="integer", required=False,
                                                        min_value=0, max_value=10)]
OUTPUT = [
    FieldSpec(name="label", type="string", allowed_values=["cat", "dog"]),
    FieldSpec(name="note", type="string", required=False, min_length=2, max_length=5,
              pattern=r"[a-z]+"),
    FieldSpec(name="score", type="number", required=False, min_value=0, max_value=1),
    FieldSpec(name="ok", type="boolean", required=False),
    FieldSpec(name="extra", type="json", required=False),
]
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def errors_by_field(values: dict) -> dict[str, str]:
    _, errs = domain.validate_values(OUTPUT, values)
    return {e["field"]: e["error"] for e in errs}


def test_valid_answers_pass_and_keep_their_values() -> None:
    clean, errs = domain.validate_values(OUTPUT, {"label": "cat", "note": "abc", "score": 0.5,
                                                  "ok": True, "extra": {"a": [1]}})
    assert errs == []
    assert clean == {"label": "cat", "note": "abc", "score": 0.5, "ok": True, "extra": {"a": [1]}}


def test_each_bad_field_gets_its_own_error() -> None:
    errs = errors_by_field({"note": "ABCDEFG", "score": 2, "ok": "yes", "bogus": 1})
    assert errs["label"] == "required"
    assert "at most 5" in errs["note"]
    assert "at most 1" in errs["score"]
    assert errs["ok"] == "must be true or false"
    assert errs["bogus"] == "unknown field"
    assert "one of" in errors_by_field({"label": "horse"})["label"]
    assert "match" in errors_by_field({"label": "cat", "note": "ab1"})["note"]
    assert "at least 2" in errors_by_field({"label": "cat", "note": "a"})["note"]


def test_types_url_integer_number() -> None:
    assert domain.check_value(FieldSpec(name="u", type="url"), "ftp://x")[1]
    assert domain.check_value(FieldSpec(name="u", type="file"), "https://x.org/a.png")[1] is None
    assert domain.check_value(FieldSpec(name="i", type="integer"), True)[1]
    assert domain.check_value(FieldSpec(name="i", type="integer"), 3.0) == (3, None)
    assert domain.check_value(FieldSpec(name="i", type="integer"), "3", coerce=True) == (3, None)
    assert domain.check_value(FieldSpec(name="x", type="number"), float("nan"))[1]


def test_spec_problems_are_reported() -> None:
    bad = [FieldSpec(name="a b"), FieldSpec(name="x", min_length=5, max_length=2),
           FieldSpec(name="x", pattern="("), FieldSpec(name="y", type="integer",
                                                        allowed_values=["one"])]
    errs = domain.check_spec(bad, which="output_spec")
    text = " ".join(e["error"] for e in errs)
    assert "letters" in text and "duplicate" in text and "min_length" in text
    assert "regex" in text and "allowed value" in text
    assert domain.check_spec(OUTPUT, which="output_spec") == []


def test_tsv_upload_reports_bad_lines_and_reads_golden_answers() -> None:
    tsv = ("INPUT:image\tn\tGOLDEN:label\n"
           "https://a.org/1.png\t3\t\n"
           "not-a-url\t3\t\n"
           "https://a.org/2.png\t11\t\n"
           "https://a.org/3.png\t\tdog\n"
           "https://a.org/4.png\t1\n"
           "https://a.org/5.png\t1\thorse\n")
    out = domain.parse_upload("tsv", tsv, INPUT, OUTPUT)
    assert [r.line for r in out.rows] == [2, 5]
    assert out.rows[0].input == {"image": "https://a.org/1.png", "n": 3}
    assert out.rows[0].control is None
    assert out.rows[1].control == {"label": "dog"}
    lines = {e["line"]: e["error"] for e in out.errors}
    assert set(lines) == {3, 4, 6, 7}
    assert "image" in lines[3] and "n: must be at most 10" in lines[4]
    assert "columns" in lines[6] and "control answer" in lines[7]


def test_json_upload_plain_and_toloka_shapes() -> None:
    rows = [{"image": "https://a.org/1.png"},
            {"input_values": {"image": "https://a.org/2.png"}, "known_solutions": {"label": "cat"}},
            {"image": 5}, "nope"]
    out = domain.parse_upload("json", json.dumps(rows), INPUT, OUTPUT)
    assert [r.line for r in out.rows] == [1, 2]
    assert out.rows[1].control == {"label": "cat"}
    assert [e["line"] for e in out.errors] == [3, 4]
    assert domain.parse_upload("json", "{", INPUT, OUTPUT).errors[0]["line"] == 0
    assert domain.parse_upload("tsv", "", INPUT, OUTPUT).errors


def test_control_answers_compare_loosely_on_known_fields_only() -> None:
    assert domain.control_correct(None, {"label": "cat"}) is None
    assert domain.control_correct({"label": "Cat "}, {"label": "cat", "note": "x"}) is True
    assert domain.control_correct({"label": "cat"}, {"label": "dog"}) is False
    assert domain.control_correct({"score": 1}, {"score": 1.0}) is True


def test_captcha_cadence_every_nth_take() -> None:
    assert [n for n in range(1, 41) if domain.captcha_due("high", n)] == [10, 20, 30, 40]
    assert [n for n in range(1, 41) if domain.captcha_due("low", n)] == [20, 40]
    assert not any(domain.captcha_due("none", n) for n in range(1, 41))
    text = domain.captcha_text()
    assert len(text) == 5 and domain.captcha_matches(text, f" {text.lower()} ")
    assert not domain.captcha_matches(text, text + "X")


def test_take_limits_say_which_limit_and_when_it_frees() -> None:
    lim = TrustLevelLimits(level="new", max_active=2, min_pause_s=10, assignment_timeout_s=60)
    deadline = NOW + timedelta(seconds=30)
    r = domain.check_take_limits(lim, active=2, earliest_deadline=deadline, last_take_at=None,
                                 now=NOW)
    assert r is not None and r.limit == "max_active" and r.retry_after_s == 30
    assert r.details()["frees_at"] == deadline.isoformat()
    r = domain.check_take_limits(lim, active=1, earliest_deadline=deadline,
                                 last_take_at=NOW - timedelta(seconds=4), now=NOW)
    assert r is not None and r.limit == "min_pause" and r.retry_after_s == 6 and r.max == 10
    assert domain.check_take_limits(lim, active=1, earliest_deadline=None,
                                    last_take_at=NOW - timedelta(seconds=10), now=NOW) is None
    assert domain.assignment_timeout(600, 60) == 60
    assert domain.assignment_timeout(30, 60) == 30
    assert domain.assignment_timeout(30, None) == 30


def test_skill_filters_and_restrictions() -> None:
    f = [SkillFilter(skill="en", op="gte", value=50), SkillFilter(skill="banned", op="absent")]
    assert domain.skills_pass(f, {"en": 50})
    assert not domain.skills_pass(f, {"en": 49})
    assert not domain.skills_pass(f, {})
    assert not domain.skills_pass(f, {"en": 90, "banned": 0})
    r = [domain.ActiveRestriction("r1", "pool", "p1", None, NOW + timedelta(hours=1)),
         domain.ActiveRestriction("r2", "project", None, "pr2", NOW - timedelta(seconds=1))]
    hit = domain.blocking_restriction(r, pool_id="p1", project_id="x", now=NOW)
    assert hit is not None and hit.restriction_id == "r1"
    assert domain.blocking_restriction(r, pool_id="p2", project_id="pr2", now=NOW) is None
    everything = [domain.ActiveRestriction("r3", "all", None, None, None)]
    assert domain.blocking_restriction(everything, pool_id="p", project_id="q", now=NOW)


def render_results(rows: list[dict], fmt: str, **kw) -> str:
    """A whole results file as one page (the export's own composition)."""
    content, _ = domain.results_page(domain.results_header(fmt, **kw),
                                     domain.result_rows(rows, fmt, **kw), fmt, max_bytes=10**6)
    return content


def test_results_render_as_csv_tsv_json() -> None:
    rows = [{"assignment_id": "a1", "task_id": "t1", "worker_id": "w1", "status": "SUBMITTED",
             "input": {"image": "https://a.org/1.png"}, "answers": {"label": "cat", "ok": True},
             "comment": "line1\nline2", "proof": None, "started_at": NOW,
             "submitted_at": NOW + timedelta(seconds=5)}]
    kw = {"input_fields": ["image"], "output_fields": ["label", "ok"]}
    parsed = list(csv.DictReader(io.StringIO(render_results(rows, "csv", **kw))))
    assert parsed[0]["OUTPUT:label"] == "cat" and parsed[0]["OUTPUT:ok"] == "true"
    assert parsed[0]["ASSIGNMENT:worker_id"] == "w1"
    assert parsed[0]["ASSIGNMENT:comment"] == "line1\nline2"
    assert parsed[0]["ASSIGNMENT:started"] == "2026-01-01T12:00:00+00:00"
    tsv = render_results(rows, "tsv", **kw)
    assert tsv.splitlines()[0].split("\t")[4] == "INPUT:image"
    data = json.loads(render_results(rows, "json", **kw))
    assert data[0]["answers"]["label"] == "cat"
    assert data[0]["submitted_at"] == "2026-01-01T12:00:05+00:00"
