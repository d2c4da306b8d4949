"""Every French string marked for translation has an English translation."""

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "_l": None, "N_": None,
            "ngettext": (1, 2), "lazy_ngettext": (1, 2)}


def _marked() -> set[str]:
    found = set()
    for folder, method in (("bousol", "python"), ("templates", "jinja2")):
        pattern = "**.py" if method == "python" else "**.html"
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder, method_map=[(pattern, method)], keywords=KEYWORDS
        ):
            if isinstance(message, str):
                found.add(message)
            elif isinstance(message, tuple) and message[0]:  # ngettext: both forms
                found.add(message)
    return found


def test_english_catalog_is_complete():
    with (ROOT / "bousol/translations/en/LC_MESSAGES/messages.po").open("rb") as po:
        catalog = read_po(po)
    # A plural message needs each of its English forms (msgstr[0], msgstr[1]).
    translated = {m.id for m in catalog if m.id and m.string and (
        not isinstance(m.string, tuple) or all(m.string))}
    marked = _marked()
    assert len(marked) > 50
    assert not marked - translated, sorted(marked - translated, key=str)
