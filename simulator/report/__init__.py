"""Reports: the terminal summary table and the self-contained HTML page.

Owns :mod:`~simulator.report.text` (the headline table in plain words), the HTML page of a
run (:mod:`~simulator.report.html`) or a sweep (:mod:`~simulator.report.sweep_page`), the
shared page parts (:mod:`~simulator.report._widgets`) and the writer
(:mod:`~simulator.report.write`). It reads run directories only through their files.

May import: :mod:`simulator.errors`, :mod:`simulator.report` modules, numpy, pyarrow,
matplotlib (lazily, an optional extra).
"""
