"""Reading back the ``data:`` URLs the app sends to the browser (thumbnails, chart films)."""

from __future__ import annotations

import base64
import io

from PIL import Image


def image_of(url: str) -> Image.Image:
    """The image a ``data:image/...;base64,`` URL carries."""
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
