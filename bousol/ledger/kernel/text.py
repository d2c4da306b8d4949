"""``N_()`` marks a French string for translation where it is defined (Babel extracts
``N_`` by default); the web layer translates it when it shows it. No Flask here."""


def N_(message: str) -> str:
    return message
