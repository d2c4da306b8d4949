"""QR codes of pay links, drawn on the server (no script, works offline)."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from flask import Response

# M: 15 % of the code can be smudged (a shop window, a phone screen with glare).
ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M


def _code(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, box_size=10, border=4)
    code.add_data(data)
    code.make(fit=True)
    return code


def svg(data: str) -> bytes:
    image = _code(data).make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    return image.to_string(encoding="unicode").encode()


def png(data: str) -> bytes:
    buffer = io.BytesIO()
    _code(data).make_image(fill_color="black", back_color="white").save(buffer, "PNG")
    return buffer.getvalue()


def svg_response(data: str) -> Response:
    response = Response(svg(data), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
