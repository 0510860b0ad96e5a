"""HTML reports from jinja2 templates (agents/templates/report/) that a user overrides file by file."""

from __future__ import annotations

import json

import jinja2
import pytest

from mira_env import ConfigError
from mira_env.agents.report import TEMPLATES, render_report, write_run_report
from mira_env.agents.rollout import EPISODES_FILE
from mira_env.train.cli import main as mira


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    assert mira(["run", "--agents", "oracle", "--tasks", "2", "--group_size", "1", "--out", str(out),
                 "--progress", "false", "--baseline", "false"]) == 0
    records = [json.loads(line) for line in (out / EPISODES_FILE).read_text().splitlines()]
    return out, records


def test_the_templates_ship_as_package_data():
    assert sorted(p.name for p in TEMPLATES.iterdir() if p.suffix != ".py" and p.is_file()) == [
        "base.html", "comparison.html", "macros.html", "report.css", "run.html"]


def test_the_shipped_report_shows_the_table_with_intervals_and_every_episode(run):
    out, records = run
    text = (out / "report.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "figure img{width:128px" in text
    assert text.count("<img") == sum(r["num_edits"] + 3 for r in records)  # source, edits, final, target
    assert text.count('class="episode"') == 2 and "1.000 [0.34, 1.00]" in text  # Wilson for 2 of 2


def test_a_css_override_restyles_and_keeps_the_rest(run, tmp_path):
    out, records = run
    (tmp_path / "report.css").write_text("body{background:#123456}", encoding="utf-8")
    text = write_run_report(out, records, path=tmp_path / "r.html", template_dir=tmp_path).read_text()
    assert "body{background:#123456}" in text and "figure img{width:128px" not in text
    assert text.count("<img") == sum(r["num_edits"] + 3 for r in records)


def test_a_page_override_extends_the_shipped_base(run, tmp_path):
    out, records = run
    (tmp_path / "run.html").write_text(
        '{% extends "base.html" %}{% from "macros.html" import table %}{% block body %}'
        '<p id="mine">{{ agents|length }} agent, {{ agents[0].episodes|length }} episodes</p>'
        '{{ table(rows, columns) }}{% endblock %}', encoding="utf-8")
    assert mira(["run", "--agents", "oracle", "--tasks", "2", "--group_size", "1", "--out", str(out),
                 "--progress", "false", "--baseline", "false", "--report_templates", str(tmp_path)]) == 0
    text = (out / "report.html").read_text(encoding="utf-8")
    assert '<p id="mine">1 agent, 2 episodes</p>' in text and "<img" not in text and "<th>success_rate</th>" in text


def test_record_text_is_escaped_and_unknown_names_fail():
    html = render_report("comparison.html", {"title": "<b>t</b>", "rows": [{"agent": "<script>x</script>"}],
                                             "columns": ["agent"], "notes": ["a & b"], "tasks": []})
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in html and "<td>&lt;script&gt;x&lt;/script&gt;</td>" in html
    assert "a &amp; b" in html and "<script>" not in html
    with pytest.raises(jinja2.UndefinedError, match="'tasks' is undefined"):
        render_report("comparison.html", {"title": "t", "rows": [], "columns": [], "notes": []})


def test_a_missing_template_folder_is_named(tmp_path):
    with pytest.raises(ConfigError) as caught:
        render_report("run.html", {}, tmp_path / "nope")
    assert str(caught.value) == (f"report template folder {str(tmp_path / 'nope')!r} does not exist; pass a folder "
                                 f"holding your versions of any of ['base.html', 'comparison.html', 'macros.html', "
                                 f"'report.css', 'run.html']")
