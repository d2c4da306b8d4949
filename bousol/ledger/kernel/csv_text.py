"""The text of an uploaded CSV file: UTF-8 (with or without BOM) or Windows-1252.

French Excel's « CSV (séparateur : point-virgule) » is saved in Windows-1252; its
« CSV UTF-8 » with a BOM. The person uploading may name the encoding, or let it be
detected:

- a UTF-8 BOM means UTF-8, whatever was chosen (the BOM is dropped);
- a UTF-16 BOM, or NUL characters, mean "not a CSV text file" (Excel's « Texte
  Unicode » is UTF-16 and tab-separated): refused;
- "auto": bytes that decode as strict UTF-8 are UTF-8 (a Windows-1252 file with
  accented letters is never valid UTF-8 in practice: é alone is 0xE9, a UTF-8 lead byte
  needing continuation bytes); otherwise Windows-1252, whose five undefined bytes
  (0x81, 0x8D, 0x8F, 0x90, 0x9D) make a file that is neither;
- control characters other than tab, CR and LF mean a binary file: refused.

No Flask here: the refusals are :class:`CsvEncodingError` with a ``reason`` the web
layer turns into a message of its language.
"""

from __future__ import annotations

import codecs

from bousol.ledger.kernel.errors import InvalidInput

AUTO, UTF8, CP1252 = "auto", "utf-8", "cp1252"
ENCODINGS = (AUTO, UTF8, CP1252)
# Why a file was refused (details["reason"]).
NOT_UTF8, NOT_CP1252, NEITHER, NOT_TEXT = "not_utf8", "not_cp1252", "neither", "not_text"
_MESSAGES = {
    NOT_UTF8: "Le fichier n'est pas en UTF-8 : choisissez « Windows-1252 » ou « détection "
              "automatique ».",
    NOT_CP1252: "Le fichier n'est pas en Windows-1252 : choisissez « UTF-8 » ou « détection "
                "automatique ».",
    NEITHER: "Le fichier n'est ni en UTF-8 ni en Windows-1252 : enregistrez-le en « CSV "
             "UTF-8 » ou en « CSV (séparateur : point-virgule) » depuis votre tableur.",
    NOT_TEXT: "Ce n'est pas un fichier texte CSV : enregistrez-le en « CSV UTF-8 » ou en "
              "« CSV (séparateur : point-virgule) » depuis votre tableur.",
}
_ALLOWED_CONTROLS = frozenset("\t\r\n")


class CsvEncodingError(InvalidInput):
    """A file that is not CSV text in a supported encoding (``details["reason"]``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(_MESSAGES[reason], reason=reason)
        self.reason = reason


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def decode(data: bytes, encoding: str = AUTO) -> tuple[str, str]:
    """(text, encoding used) of an uploaded file; refusals as :class:`CsvEncodingError`."""
    if encoding not in ENCODINGS:
        encoding = AUTO
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CsvEncodingError(NOT_TEXT)
    if data.startswith(codecs.BOM_UTF8):
        text, used = _strict(data[len(codecs.BOM_UTF8):], UTF8), UTF8
        if text is None:
            raise CsvEncodingError(NOT_UTF8 if encoding == UTF8 else NEITHER)
    elif encoding == UTF8:
        text, used = _strict(data, UTF8), UTF8
        if text is None:
            raise CsvEncodingError(NOT_UTF8)
    elif encoding == CP1252:
        text, used = _strict(data, CP1252), CP1252
        if text is None:
            raise CsvEncodingError(NOT_CP1252)
    else:
        text, used = _strict(data, UTF8), UTF8
        if text is None:
            text, used = _strict(data, CP1252), CP1252
        if text is None:
            raise CsvEncodingError(NEITHER)
    if any(ord(c) < 32 and c not in _ALLOWED_CONTROLS for c in text):
        raise CsvEncodingError(NOT_TEXT)  # NULs of UTF-16 without BOM, a binary file
    return text, used
