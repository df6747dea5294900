"""MkDocs hook: pages whose text lives outside ``docs/``, and the links to them.

``README.md`` is the site's front page and ``scenarios/README.md`` its scenario library
(the test suite reads that file where it is). ``docs/index.md`` and ``docs/scenarios.md``
stand in for them: on GitHub they point to the real files, and at build time their text
is replaced by the file they stand for. Every relative link of a page is resolved from the
folder of the file its text comes from: a link to one of those two files becomes a link to
its stand-in page (so any page may link ``../README.md#a-worked-example`` and the link
works on GitHub and on the site), and a link into ``docs/`` becomes a link to that page.
Any other link is left as written, so ``mkdocs build --strict`` reports it.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any

#: the stand-in page (relative to ``docs/``) -> the file it renders (relative to the root)
MIRRORS = {"index.md": "README.md", "scenarios.md": "scenarios/README.md"}
_PAGE_OF = {source: page for page, source in MIRRORS.items()}

#: an inline link or image target, without a title: ``](target)``
_LINK = re.compile(r"(\]\()([^)\s]+)(\))")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _root(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def _docs_folder(config: Any) -> str:
    return Path(os.path.relpath(Path(config["docs_dir"]).resolve(), _root(config))).as_posix()


def rewrite_links(text: str, source: str, page: str, docs: str = "docs") -> str:
    """Rewrite the relative links of ``text`` (from the file ``source``) for ``page``.

    ``source`` is relative to the repository root, ``page`` to ``docs``. Fenced code
    blocks are left alone.
    """
    source_dir = posixpath.dirname(source)
    page_dir = posixpath.dirname(page) or "."

    def fix(match: re.Match[str]) -> str:
        target = match.group(2)
        if target.startswith(("#", "/")) or _SCHEME.match(target):
            return match.group(0)
        path, hash_sign, fragment = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(source_dir, path))
        site = _PAGE_OF.get(resolved)
        if site is None and resolved.startswith(docs + "/"):
            site = resolved[len(docs) + 1:]
        if site is None:
            return match.group(0)
        new = posixpath.relpath(site, page_dir)
        return f"{match.group(1)}{new}{hash_sign}{fragment}{match.group(3)}"

    lines, fenced = [], False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        lines.append(line if fenced or _FENCE.match(line) else _LINK.sub(fix, line))
    return "".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **_: Any) -> str:
    docs = _docs_folder(config)
    src = page.file.src_uri
    source = MIRRORS.get(src)
    if source is not None:
        markdown = (_root(config) / source).read_text(encoding="utf-8")
    else:
        source = f"{docs}/{src}"
    return rewrite_links(markdown, source, src, docs)


def on_serve(server: Any, config: Any, builder: Any, **_: Any) -> Any:
    for source in MIRRORS.values():
        server.watch(str(_root(config) / source))
    return server
