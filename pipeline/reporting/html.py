"""Markdown to one self-contained HTML file (figures inlined), without importing torch."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import markdown


def to_html(md_text: str, base: Path) -> str:
    """Self-contained HTML: every figure inlined as a data URI."""
    body = markdown.markdown(md_text, extensions=["tables", "fenced_code"])

    def inline(match: re.Match) -> str:
        data = base64.b64encode((base / match.group(1)).read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^"]+\.png)"', inline, body)
    style = (
        "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;line-height:1.5}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}pre{background:#f6f6f6;padding:1em}"
    )
    return f"<!doctype html>\n<html><head><meta charset='utf-8'><title>Augmentation report</title><style>{style}</style></head>\n<body>\n{body}\n</body></html>\n"
