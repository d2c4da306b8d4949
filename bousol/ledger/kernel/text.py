"""``N_()`` marks a French string for translation where it is defined (Babel extracts
``N_`` by default); the web layer translates it when it shows it. No Flask here.
``sort_name()`` is the one fold of a name the alphabetical lists use."""

import unicodedata


def N_(message: str) -> str:
    return message


def sort_name(name: str | None) -> str:
    """Alphabetical as a reader expects it: "Éco-Habitat" among the E. Accents dropped
    (NFKD, combining marks removed), then case-folded; compared by code point (the
    column ``sort_name`` of parties and partners keeps it, collation "C" on PostgreSQL,
    docs/members.md)."""
    plain = unicodedata.normalize("NFKD", name or "")
    return "".join(c for c in plain if not unicodedata.combining(c)).casefold()
