"""The order of the run report (headline numbers first, figures, the full metric table
last) and the headline table in HTML: the page's and ``RunResult._repr_html_``'s rows are
those the terminal prints (``summary_table``), with summary.json's numbers."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import simulator
from simulator import RunResult
from simulator.report.text import headline_rows, summary_table
from simulator.report.write import write_report

FIGURES = {"loss_distribution", "liquidations_fan", "cascade_depth", "price_fan_BTC",
           "price_fan_ETH", "riskiest_accounts"}
TABLES = {"headline", "riskiest-accounts", "summary-metrics"}
#: how the terminal shows each headline metric (written out here, not imported)
PCT = {"liquidation_prob", "cascade_share", "bad_debt_prob", "insurance_fund_depletion_prob"}
NUM = {"n_liquidations_mean", "max_cascade_rounds_mean", "first_liquidation_step_p50"}


class _Order(HTMLParser):
    """The page's tables and figures in document order, and each table's body rows (cell
    texts and attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[tuple[str, str]] = []
        self.rows: dict[str, list[dict[str, object]]] = {}
        self._table: str | None = None
        self._body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.order.append(("figure", a["data-figure"]))
        elif tag == "table":
            self._table = a.get("id", "")
            self.order.append(("table", self._table))
            if a.get("data-figure"):
                self.order.append(("figure", a["data-figure"]))
            self.rows[self._table] = []
        elif tag == "h2":
            self.order.append(("h2", ""))
        elif tag == "tbody":
            self._body = True
        elif tag == "tr" and self._table is not None and self._body:
            self.rows[self._table].append({"metric": a.get("data-metric"), "cells": []})
        elif tag == "td" and self._table is not None and self._body:
            self._cell = []
            self.rows[self._table][-1]["cells"].append((self._cell, a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        elif tag == "tbody":
            self._body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(text: str) -> _Order:
    page = _Order()
    page.feed(text)
    page.close()
    return page


def _cells(row: dict[str, object]) -> list[str]:
    return ["".join(parts).strip() for parts, _ in row["cells"]]  # type: ignore[union-attr]


def _terminal_rows(summary: dict) -> list[tuple[str, str, str]]:
    """The rows of the table ``marginsim run`` prints, parsed back from its text."""
    lines = summary_table(summary).splitlines()
    assert lines[1].split() == ["metric", "estimate", "(stderr)"]
    rows = []
    for line in lines[2:]:
        m = re.fullmatch(r"  (.+?) {2,}(\S+) {2,}(± \S+)", line)
        assert m, line
        rows.append((m.group(1), m.group(2), m.group(3)))
    return rows


def _expected(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric in PCT:
        return f"{100 * value:.2f}%"
    if metric in NUM:
        return f"{value:,.3f}"
    return f"{value:,.0f}"


def _check_headline(rows: list[dict[str, object]], summary: dict) -> None:
    """The rows equal the terminal's, and hold summary.json's numbers."""
    assert [tuple(_cells(r)) for r in rows] == _terminal_rows(summary) == headline_rows(summary)
    assert len(rows) >= 12
    for row in rows:
        metric = row["metric"]
        m = summary["metrics"][metric]
        (_, label), (est_text, est), (se_text, se) = (("".join(p).strip(), a)
                                                      for p, a in row["cells"])
        assert est_text == _expected(metric, m["estimate"])
        assert se_text == "± " + _expected(metric, m["stderr"])
        for attrs, value in ((est, m["estimate"]), (se, m["stderr"])):
            if value is None:
                assert "data-value" not in attrs
            else:
                assert float(attrs["data-value"]) == value


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    sc = simulator.load_scenario("two-asset-crash", ["simulation.paths=120",
                                                     "simulation.chunk_paths=60",
                                                     "population.count=300"])
    return simulator.run(sc, tmp_path_factory.mktemp("page") / "r", save_prices=10)


def test_headline_first_figures_then_every_metric(run: RunResult) -> None:
    text = write_report(run.out_dir).read_text(encoding="utf-8")
    page = _parse(text)
    shown = [(kind, name) for kind, name in page.order if kind != "h2"]
    figures = [i for i, (kind, _) in enumerate(shown) if kind == "figure"]
    tables = {name: i for i, (kind, name) in enumerate(shown) if kind == "table"}
    assert {name for kind, name in shown if kind == "figure"} == FIGURES
    assert set(tables) == TABLES
    # the headline opens the page: before any figure or other table
    assert shown[0] == ("table", "headline")
    assert text.index("<h2>") == text.index("<h2>Headline</h2>") < text.index("<img")
    # the full metric table closes it: after the last figure (and the riskiest accounts)
    assert tables["summary-metrics"] == len(shown) - 1 > max(figures)
    assert tables["summary-metrics"] > tables["riskiest-accounts"]
    summary = json.loads((run.out_dir / "summary.json").read_text())
    _check_headline(page.rows["headline"], summary)
    full = {_cells(r)[0] for r in page.rows["summary-metrics"]}
    assert full == set(summary["metrics"])


def test_repr_html_is_the_terminal_table(run: RunResult) -> None:
    summary = json.loads((run.out_dir / "summary.json").read_text())
    for result in (run, RunResult.open(run.out_dir)):
        text = result._repr_html_()
        page = _parse(text)
        assert [name for kind, name in page.order if kind == "table"] == ["headline"]
        _check_headline(page.rows["headline"], summary)
        assert f"{summary['paths']:,} paths, seed {summary['seed']}" in text
        assert str(run.out_dir) in text and "<img" not in text


def test_repr_html_escapes(tmp_path: Path) -> None:
    summary = {"scenario": "<b>crash</b> & co", "paths": 1234, "seed": 5,
               "metrics": {"liquidation_prob": {"estimate": 0.25, "stderr": 0.0125},
                           "bad_debt_es_99": {"estimate": 1234567.8, "stderr": None},
                           "not_a_headline_metric": {"estimate": 1.0, "stderr": 0.0}}}
    result = RunResult(out_dir=tmp_path / "<dir>&", summary=summary, n_paths=1234,
                       wall_seconds=1.5)
    text = result._repr_html_()
    assert "<b>" not in text and "&lt;b&gt;crash&lt;/b&gt; &amp; co" in text
    assert "&lt;dir&gt;&amp;" in text
    rows = _parse(text).rows["headline"]
    assert [_cells(r) for r in rows] == [["P(any liquidation)", "25.00%", "± 1.25%"],
                                         ["bad debt ES 99% (USD)", "1,234,568", "± n/a"]]
    assert "not_a_headline_metric" not in text
    # not a marginsim summary: the repr, escaped, rather than an error
    odd = RunResult(out_dir=tmp_path, summary={"scenario": "<x>"}, n_paths=0, wall_seconds=0)
    assert odd._repr_html_().startswith("<pre>RunResult(") and "<x>" not in odd._repr_html_()
