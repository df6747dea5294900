"""The progress line on stderr: paths done, rate and time left."""

from __future__ import annotations

import sys
import time


class Progress:
    """A one-line progress display on stderr (chunks, paths/s, ETA)."""

    def __init__(self, total_paths: int, n_chunks: int, enabled: bool, done_paths: int = 0,
                 done_chunks: int = 0) -> None:
        self.total, self.n_chunks, self.enabled = total_paths, n_chunks, enabled
        self.start = time.perf_counter()
        self.skipped = done_paths
        self.done_paths = done_paths
        self.done_chunks = done_chunks

    def update(self, n_paths: int) -> None:
        """Record one finished chunk of ``n_paths`` paths."""
        self.done_paths += n_paths
        self.done_chunks += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = (self.done_paths - self.skipped) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done_paths) / rate if rate > 0 else 0.0
        sys.stderr.write(f"\r  chunks {self.done_chunks}/{self.n_chunks}  paths "
                         f"{self.done_paths:,}/{self.total:,}  {rate:,.0f} paths/s  "
                         f"ETA {eta:,.0f}s   ")
        sys.stderr.flush()

    def close(self) -> None:
        """End the progress line."""
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
