"""The self-contained HTML report (``simulator.report.html.write_report``)."""

from __future__ import annotations

import base64
import json
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from simulator.cli import main
from simulator.errors import MarginsimError
from simulator.report.html import TOP_ACCOUNTS
from simulator.report.sweep_page import SWEEP_METRICS
from simulator.report.write import write_report

PNG = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects the images, the tables (cells with their attributes) and the tags."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, dict[str, str]] = {}
        self.tables: dict[str, list[list[tuple[str, dict[str, str]]]]] = {}
        self.tags: set[str] = set()
        self._table: str | None = None
        self._in_body = False
        self._cell: tuple[list[str], dict[str, str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if tag == "img":
            assert a["data-figure"] not in self.images, f"duplicate figure {a['data-figure']}"
            self.images[a["data-figure"]] = a
        elif tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td" and self._in_body:
            self._cell = ([], a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(("".join(self._cell[0]).strip(), self._cell[1]))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[0].append(data)


def _parse(report: Path) -> tuple[_Page, str]:
    text = report.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    return page, text


def _check_images(page: _Page, expected: set[str]) -> None:
    assert expected <= set(page.images), f"missing figures: {expected - set(page.images)}"
    for name, img in page.images.items():
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix), name
        data = base64.b64decode(img["src"][len(prefix):], validate=True)
        assert len(data) > 1000 and data.startswith(PNG), name
        assert img.get("alt", "").strip(), f"{name} has no alt text"


def _run(out: Path, *args: str) -> Path:
    assert main(["run", *args, "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def crash_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """two-asset-crash with saved prices (two assets, hundreds of accounts)."""
    return _run(tmp_path_factory.mktemp("report") / "crash", "two-asset-crash", "--paths", "200",
                "--save-prices", "20", "--set", "population.count=300")


@pytest.fixture(scope="module")
def gap_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deterministic-gap without --save-prices (a handful of explicit accounts)."""
    return _run(tmp_path_factory.mktemp("report") / "gap", "deterministic-gap", "--paths", "200")


def test_run_report_figures_and_tables(crash_run: Path) -> None:
    report = write_report(crash_run)
    assert report == crash_run / "report.html"
    assert not [p for p in crash_run.iterdir() if p.name.endswith(".tmp")]
    page, text = _parse(report)
    _check_images(page, {"loss_distribution", "liquidations_fan", "cascade_depth",
                         "price_fan_BTC", "price_fan_ETH"})
    # self-contained: no scripts, no external resources
    assert "script" not in page.tags and "http://" not in text and "https://" not in text
    assert "two-asset-crash" in text and "without --save-prices" not in text

    accounts = pq.read_table(crash_run / "accounts.parquet")
    rows = page.tables["riskiest-accounts"]
    assert len(rows) == min(TOP_ACCOUNTS, accounts.num_rows) == TOP_ACCOUNTS
    es = np.asarray(pc.fill_null(accounts["es_99"], np.nan).to_numpy(), dtype=float)
    assert rows[0][1][0] == accounts["account_id"][int(np.nanargmax(es))].as_py()
    shown = [float(r[3][1]["data-value"]) for r in rows]  # rank, id, margin mode, es_99
    assert shown == sorted(shown, reverse=True) and shown[0] == np.nanmax(es)

    summary = json.loads((crash_run / "summary.json").read_text())
    metrics = {r[0][0]: r for r in page.tables["summary-metrics"]}
    assert set(metrics) == set(summary["metrics"])
    es99 = summary["metrics"]["bad_debt_es_99"]
    est, se = metrics["bad_debt_es_99"][1], metrics["bad_debt_es_99"][2]
    assert float(est[1]["data-value"]) == es99["estimate"]
    assert est[0] == f"${es99['estimate']:,.0f}"
    assert f"Vertical lines: ES 99% = {est[0]}; VaR 99% = $" in text  # drawn on the histogram
    assert float(se[1]["data-value"]) == es99["stderr"]
    prob = summary["metrics"]["liquidation_prob"]["estimate"]
    assert metrics["liquidation_prob"][1][0] == f"{100 * prob:.2f}%"


def test_run_without_saved_prices(gap_run: Path) -> None:
    page, text = _parse(write_report(gap_run))
    _check_images(page, {"loss_distribution", "liquidations_fan", "cascade_depth",
                         "price_fan_BTC"})
    assert "without --save-prices" in text
    accounts = pq.read_table(gap_run / "accounts.parquet")
    assert len(page.tables["riskiest-accounts"]) == min(TOP_ACCOUNTS, accounts.num_rows)


def test_no_impact_fan_drawn_when_present(crash_run: Path, tmp_path: Path) -> None:
    run = shutil.copytree(crash_run, tmp_path / "run")
    for part in (run / "prices_no_impact").glob("*.parquet"):
        t = pq.read_table(part)
        # the run saves both exogenous paths; keep BTC's only
        pq.write_table(t.drop_columns(["ETH"]), part)
    page, _ = _parse(write_report(run))
    _check_images(page, {"price_fan_BTC", "price_fan_ETH"})
    assert "price_fan_BTC_no_impact" not in page.images
    assert "without market impact" in page.images["price_fan_BTC"]["alt"]
    assert "without market impact" not in page.images["price_fan_ETH"]["alt"]


def _fake_sweep(path: Path, grid: dict[str, list[float]]) -> Path:
    path.mkdir()
    n = len(next(iter(grid.values())))
    rng = np.random.default_rng(0)
    cols: dict[str, pa.Array] = {k: pa.array(v, pa.float64()) for k, v in grid.items()}
    cols["point_dir"] = pa.array([f"points/{i:03d}" for i in range(n)])
    for m in (*SWEEP_METRICS, "fees_mean"):
        scale = 1.0 if m.endswith("_prob") else 1e6
        cols[m] = pa.array(rng.uniform(0, scale, n))
        cols[f"{m}_stderr"] = pa.array(rng.uniform(0, scale / 50, n))
    pq.write_table(pa.table(cols), path / "sweep.parquet")
    return path


def test_sweep_1d(tmp_path: Path) -> None:
    sweep = _fake_sweep(tmp_path / "sweep",
                        {"venue.maintenance_margin_rate": [0.005, 0.01, 0.02]})
    page, text = _parse(write_report(sweep))
    _check_images(page, {f"sweep_{m}" for m in SWEEP_METRICS})
    assert "sweep_fees_mean" not in page.images
    assert len(page.tables["sweep-table"]) == 3
    assert "venue.maintenance_margin_rate" in text


def test_sweep_2d_heatmaps(tmp_path: Path) -> None:
    mmr = [0.005, 0.01, 0.02] * 2
    fee = [0.005] * 3 + [0.0125] * 3
    sweep = _fake_sweep(tmp_path / "sweep", {"venue.maintenance_margin_rate": mmr,
                                             "venue.liquidation_fee_rate": fee})
    (sweep / "sweep.json").write_text(json.dumps(
        {"scenario": "fake", "seed": 3, "grid": {"venue.maintenance_margin_rate": [0.005],
                                                 "venue.liquidation_fee_rate": [0.005]}}))
    page, text = _parse(write_report(sweep))
    _check_images(page, {f"sweep_{m}" for m in SWEEP_METRICS})
    assert "Heatmap" in page.images["sweep_bad_debt_mean"]["alt"]
    assert len(page.tables["sweep-table"]) == 6 and "fake" in text


def test_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MarginsimError, match="not a run directory"):
        write_report(tmp_path)
    (tmp_path / "manifest.json").write_text('{"status": "running"}')  # an interrupted run
    with pytest.raises(MarginsimError, match="incomplete.*--resume"):
        write_report(tmp_path)
    (tmp_path / "manifest.json").unlink()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    with pytest.raises(MarginsimError, match=r'pip install "marginsim\[report\]"'):
        write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_cli_report_writes_html_for_runs_and_sweeps(tmp_path, capsys):
    """``marginsim report DIR`` writes report.html and prints the table, for a run and
    for a real sweep; ``--no-html`` only prints; a missing directory is one error line."""
    from simulator.cli import main

    run_dir = tmp_path / "run"
    assert main(["run", "deterministic-gap", "--paths", "50", "--out", str(run_dir),
                 "--quiet"]) == 0
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "P(any liquidation)" in out and "report.html" in out
    assert (run_dir / "report.html").stat().st_size > 10_000
    sweep_dir = tmp_path / "sweep"
    assert main(["sweep", "deterministic-gap", "--paths", "50", "--quiet", "--out",
                 str(sweep_dir), "--grid", "venue.maintenance_margin_rate=0.005,0.02"]) == 0
    assert main(["report", str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    assert "venue.maintenance_margin_rate" in out
    text = (sweep_dir / "report.html").read_text()
    assert 'data-figure="sweep_liquidation_prob"' in text
    (tmp_path / "plain").mkdir()
    assert main(["run", "deterministic-gap", "--paths", "20", "--out",
                 str(tmp_path / "plain" / "r"), "--quiet"]) == 0
    assert main(["report", "--no-html", str(tmp_path / "plain" / "r")]) == 0
    assert not (tmp_path / "plain" / "r" / "report.html").exists()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("text", ["{not json", "[1]"])
def test_bad_sweep_json_is_one_error_line(tmp_path, capsys, text):
    """A sweep.json that is not JSON, or JSON that is no object: exit 2 with one line naming
    the file, with and without --no-html (these raised a traceback)."""
    from simulator.cli import main

    sweep = _fake_sweep(tmp_path / "sweep", {"venue.maintenance_margin_rate": [0.01, 0.02]})
    (sweep / "sweep.json").write_text(text)
    for args in (["report", "--no-html", str(sweep)], ["report", str(sweep)]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(sweep / "sweep.json") in err, err
    assert not (sweep / "report.html").exists()


def test_no_html_sweep_table_without_sweep_json(tmp_path, capsys):
    """Without sweep.json the printed table takes the grid keys the page takes (such a
    directory does not verify: it is reported only with --unverified, with a warning)."""
    from simulator.cli import main

    sweep = _fake_sweep(tmp_path / "sweep", {"venue.maintenance_margin_rate": [0.01, 0.02]})
    assert main(["report", "--no-html", str(sweep)]) == 2
    assert "fails verification" in capsys.readouterr().err
    assert main(["report", "--no-html", "--unverified", str(sweep)]) == 0
    captured = capsys.readouterr()
    assert captured.out.split()[0] == "venue.maintenance_margin_rate"
    assert captured.err.count("\n") == 1 and "warning:" in captured.err


def test_summary_json_not_an_object(tmp_path, capsys):
    from simulator.cli import main

    (tmp_path / "summary.json").write_text("[1]")
    for args in (["report", "--no-html", str(tmp_path)], ["report", str(tmp_path)]):
        assert main(args) == 2  # not verifiable: refused
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "fails verification" in err, err
        assert main([*args, "--unverified"]) == 2  # a warning, then the error
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 2 and "warning:" in err[0] and "summary.json" in err[1], err


def test_a_rare_event_run_says_its_figures_are_unweighted(tmp_path: Path) -> None:
    """Rare-event mode: the headline starts with the event's probability, and the page says
    that the figures show the tilted paths as drawn."""
    run_dir = _run(tmp_path / "rare", "two-asset-crash", "--paths", "400", "--rare",
                   "bad_debt>700000", "--set", "population.count=300", "--set",
                   "simulation.steps=48", "--set", "simulation.rare_pilot_paths=400")
    page, text = _parse(write_report(run_dir))
    assert "importance-sampled towards bad_debt&gt;700000" in text or \
        "importance-sampled towards bad_debt>700000" in text
    assert "unweighted" in text
    first = page.tables["headline"][0]
    assert first[0][0] == "P(bad_debt>700000)"
