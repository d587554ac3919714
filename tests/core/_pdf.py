"""Reading back the text of the PDFs the app writes (fpdf2, core fonts), page by page.

No PDF library is a dependency of the project; fpdf2 writes each text line as
``x y Td (text) Tj`` inside one content stream per page, in page order, which is all
the tests need.
"""

from __future__ import annotations

import re
import zlib

_STREAM = re.compile(
    rb"<<(?P<dict>(?:(?!endobj).)*?)>>\s*stream\r?\n(?P<data>.*?)\r?\nendstream", re.S
)
_BLOCK = re.compile(rb"BT (?P<body>.*?) ET", re.S)
_POSITION = re.compile(rb"([\d.]+) ([\d.]+) Td")
_IMAGE = re.compile(rb"[\d.]+ 0 0 ([\d.]+) [\d.]+ ([\d.]+) cm /I\d+ Do")
_STRING = re.compile(rb"\((?P<text>(?:\\.|[^\\)])*)\)\s*Tj")


#: The line standing for an embedded image, at the height of its top edge.
IMAGE_LINE = "[image]"


def page_count(pdf: bytes) -> int:
    """Pages in the document (``/Type /Page`` objects, not the ``/Pages`` tree)."""
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


def _unescape(text: bytes) -> str:
    return re.sub(rb"\\(.)", rb"\1", text).decode("latin-1")


def page_lines(pdf: bytes) -> list[list[str]]:
    """Each page's text lines, top to bottom (pieces on one baseline joined left to right).

    An image counts as one line, :data:`IMAGE_LINE`, at the height of its top edge.
    """
    pages = []
    for match in _STREAM.finditer(pdf):
        if b"/Image" in match.group("dict") or b"/Length1" in match.group("dict"):
            continue
        data = match.group("data")
        # A stream whose last byte is a carriage return loses it to the pattern's "\r?\n".
        length = re.search(rb"/Length (\d+)", match.group("dict"))
        if length is not None:
            start = match.start("data")
            data = pdf[start : start + int(length.group(1))]
        if b"/FlateDecode" in match.group("dict"):
            data = zlib.decompress(data)
        if b" Tj" not in data:
            continue
        rows: dict[float, list[tuple[float, str]]] = {}
        for block in _BLOCK.finditer(data):
            position = _POSITION.search(block.group("body"))
            strings = [m.group("text") for m in _STRING.finditer(block.group("body"))]
            if position is None or not strings:
                continue
            x, y = float(position.group(1)), round(float(position.group(2)), 1)
            rows.setdefault(y, []).append((x, _unescape(b"".join(strings))))
        for image in _IMAGE.finditer(data):
            top = round(float(image.group(1)) + float(image.group(2)), 1)
            rows.setdefault(top, []).append((0.0, IMAGE_LINE))
        pages.append([" ".join(t for _, t in sorted(rows[y])) for y in sorted(rows, reverse=True)])
    return pages
