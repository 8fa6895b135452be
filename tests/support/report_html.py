"""report.html parsed: headings, tables (class, header cells, body rows), images and links."""

from __future__ import annotations

from html.parser import HTMLParser


class ReportStructure(HTMLParser):
    """Headings, tables (class, header cells, body rows) and images of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self.tables: list[dict] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self._heading: str | None = None
        self._text: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag in ("h1", "h2", "h3"):
            self._heading, self._text = tag, []
        elif tag == "table":
            self.tables.append({"class": a.get("class", ""), "headers": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "script":
            self.scripts += 1
        if tag in ("link", "a", "iframe", "source") and (a.get("href") or a.get("src")):
            self.links.append(a.get("href") or a.get("src"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self.tables and not self.tables[-1]["rows"][-1]:
            self.tables[-1]["rows"].pop()  # the header row
        if tag == self._heading:
            self.headings.append((tag, "".join(self._text).strip()))
            self._heading = None
        elif tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            table = self.tables[-1]
            if tag == "th" and not table["rows"][-1] and len(table["rows"]) == 1:
                table["headers"].append(text)
            else:
                table["rows"][-1].append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._heading:
            self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse_report(html_text: str) -> ReportStructure:
    parser = ReportStructure()
    parser.feed(html_text)
    return parser


def report_tables(s: ReportStructure, cls: str) -> list[dict]:
    return [t for t in s.tables if t["class"] == cls]
