"""The datasheet's blocks as Markdown and as HTML, every piece of outside text escaped.

Synset names, licences and sources come from users and from the web: each format
escapes them its own way, so a hostile name shows as its characters and never
becomes markup or a link.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

Block = tuple  # ("h2", text) | ("p", text) | ("table", header, rows) | ("img", path, alt)


# Characters with a meaning inside a Markdown line (CommonMark and GitHub's extensions):
# emphasis, code, links and images, raw HTML and entities, table cells, strikethrough,
# math, closing heading marks, and the backslash itself.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&#~$])")
# Line breaks (and every other control character) would end a table row or start a
# heading, list or quote: a name is one line.
_MD_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MD_WWW = re.compile(r"(?i)\b(www)\.")


def md_text(value: object) -> str:
    """Text from outside (synset names, licences, sources) as literal Markdown text.

    Backslash escapes every character that could start markup, so a name like
    ``<img src=x onerror=...>`` or ``[click](javascript:...)`` shows as those
    characters; ``://`` and ``www.`` are escaped too, so GitHub does not turn a
    URL in a hostile name into a link.
    """
    text = _MD_SPECIAL.sub(r"\\\1", _MD_BREAKS.sub(" ", str(value)))
    return _MD_WWW.sub(r"\1\\.", text).replace("://", r":\/\/")


def to_markdown(blocks: list[Block]) -> str:
    """Every piece of text goes through :func:`md_text`; only the structure is Markdown."""
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + md_text(block[1]))
        elif kind == "p":
            out.append(md_text(block[1]))
        elif kind == "img":
            out.append(f"![{md_text(block[2])}]({quote(block[1])})")
        elif kind == "table":
            header, rows = block[1], block[2]
            out.append("| " + " | ".join(md_text(h) for h in header) + " |")
            out.append("|" + "---|" * len(header))
            out.extend("| " + " | ".join(md_text(v) for v in row) + " |" for row in rows)
        out.append("")
    return "\n".join(out)


def to_html(blocks: list[Block]) -> str:
    """Every piece of text HTML-escaped (quotes included: some land in attributes)."""
    e = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Datasheet</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>",
        "</head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "img":
            out.append(f"<p><img src='{e(quote(block[1]))}' alt='{e(block[2])}'></p>")
        elif kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in block[1])
            body = "".join(
                "<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in block[2]
            )
            out.append(f"<table><tr>{head}</tr>{body}</table>")
    out.append("</body></html>")
    return "\n".join(out)
