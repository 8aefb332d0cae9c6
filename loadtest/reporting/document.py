"""One document outline, rendered to Markdown and to HTML: every page the project writes goes through here.

A page is a title, a lead line and a list of blocks (headings, paragraphs, bullet lists, tables,
images, preformatted text).  The comparison report, the slow-clients report and the diff build
their outline once and render it twice, so report.md and report.html cannot drift apart, and all
pages share one skeleton and one stylesheet.  Images are embedded (base64) in the HTML, so it
opens anywhere with no network and no sibling files, and linked by path from the Markdown.

Knows nothing of runs, rows or figures: only how a block looks in each format, and where the two files go.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;
  padding:0 1rem;color:#222}
h1{margin-bottom:.2rem} .answers li{margin:.25rem 0} .bad{color:#b00020} .warn{color:#8a5a00}
table{border-collapse:collapse;font-size:.85rem;margin:1rem 0;width:100%}
th,td{border:1px solid #ddd;padding:.3rem .45rem;text-align:right;vertical-align:top}
th{background:#f4f4f4}
td:nth-child(-n+2),td:last-child,th:nth-child(-n+2),th:last-child{text-align:left}
td:nth-child(-n+2),table.figures td{white-space:nowrap}
table.figures td:last-child{white-space:normal;min-width:14rem}
tr.failed td{background:#fdecec} tr.floor td{background:#fff8e1}
img{max-width:100%;display:block;margin:.6rem 0}
pre{background:#f6f6f6;padding:.6rem;overflow:auto;font-size:.8rem}
.meta{color:#555;font-size:.85rem}
"""


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2
    cls: str = ""  # HTML class ("bad" for a failure's heading)


@dataclass(frozen=True)
class Para:
    text: str
    cls: str = ""  # "meta" (small print) or "strong" (the page's verdict); HTML only


@dataclass(frozen=True)
class Item:
    text: str
    cls: str = ""  # "bad" or "warn"; HTML only
    links: tuple[tuple[str, str], ...] = ()  # (href, label), after the text


@dataclass(frozen=True)
class Items:
    items: list[Item]
    cls: str = ""  # "answers" or "meta"; HTML only


@dataclass(frozen=True)
class Table:
    header: list[str]
    body: list[list[str]]
    classes: list[str] | None = None  # one HTML row class per body row ("failed", "floor")
    kind: str = ""  # HTML table class ("figures": no wrapping but in the last column)


@dataclass(frozen=True)
class Image:
    alt: str
    path: str  # relative to the Markdown file
    data: bytes  # PNG, embedded in the HTML


@dataclass(frozen=True)
class Pre:
    text: str


Block = Heading | Para | Items | Table | Image | Pre


@dataclass
class Page:
    title: str
    lead: str = ""  # one line under the title: what ran, when, where
    blocks: list[Block] = field(default_factory=list)
    html_title: str = ""  # the browser tab's title, when it says more than the heading


def items(texts: list[str], cls: str = "") -> Items:
    return Items([Item(t) for t in texts], cls)


# --------------------------------------------------------------------------- Markdown


def md_table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |" for cells in body
    ]
    return [*lines, ""]


def md_item(item: Item) -> str:
    links = ", ".join(f"[{label}]({href})" for href, label in item.links)
    return "- " + ": ".join(part for part in (item.text, links) if part)


def md_block(block: Block) -> list[str]:
    match block:
        case Heading(text, level):
            return ["#" * level + " " + text, ""]
        case Para(text):
            return [text, ""]
        case Items(entries):
            return [*(md_item(i) for i in entries), ""]
        case Table(header, body):
            return md_table(header, body)
        case Image(alt, path):
            return [f"![{alt}]({path})", ""]
        case Pre(text):
            return ["```", text, "```", ""]
    raise TypeError(f"not a block: {block!r}")


def to_markdown(page: Page) -> str:
    lines = [f"# {page.title}", ""] + ([page.lead, ""] if page.lead else [])
    for block in page.blocks:
        lines += md_block(block)
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML


def attr(cls: str) -> str:
    return f" class={cls}" if cls else ""


def img_tag(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def html_table(table: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in table.header)
    parts = [f"<table class='{table.kind}'><tr>{head}</tr>"]
    for cls, cells in zip(table.classes or [""] * len(table.body), table.body, strict=True):
        parts.append(f"<tr class='{cls}'>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    return "".join(parts) + "</table>"


def html_item(item: Item) -> str:
    e = html.escape
    links = ", ".join(f'<a href="{e(href)}">{e(label)}</a>' for href, label in item.links)
    return f"<li{attr(item.cls)}>" + ": ".join(part for part in (e(item.text), links) if part) + "</li>"


def html_block(block: Block) -> str:
    e = html.escape
    match block:
        case Heading(text, level, cls):
            return f"<h{level}{attr(cls)}>{e(text)}</h{level}>"
        case Para(text, "strong"):
            return f"<p><strong>{e(text)}</strong></p>"
        case Para(text, cls):
            return f"<p{attr(cls)}>{e(text)}</p>"
        case Items(entries, cls):
            return f"<ul{attr(cls)}>" + "".join(html_item(i) for i in entries) + "</ul>"
        case Table():
            return html_table(block)
        case Image(alt, _, data):
            return img_tag(data, alt)
        case Pre(text):
            return f"<pre>{e(text)}</pre>"
    raise TypeError(f"not a block: {block!r}")


def to_html(page: Page) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{e(page.html_title or page.title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{e(page.title)}</h1>",
    ]
    if page.lead:
        parts.append(f"<p class=meta>{e(page.lead)}</p>")
    parts += [html_block(block) for block in page.blocks]
    parts.append("</body></html>")
    return "\n".join(parts)


def write(out: Path, stem: str, page: Page) -> None:
    """The page rendered twice: ``<stem>.md`` and the self-contained ``<stem>.html`` in ``out``."""
    (out / f"{stem}.md").write_text(to_markdown(page), encoding="utf-8")
    (out / f"{stem}.html").write_text(to_html(page), encoding="utf-8")
