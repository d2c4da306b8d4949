"""Sending e-mail (membership reminders…) without Flask: a ``Mailer`` and two transports.

- ``smtp``: smtplib to the configured server (``MAIL_SERVER``, ``MAIL_PORT``,
  ``MAIL_USERNAME``, ``MAIL_PASSWORD``, ``MAIL_USE_TLS`` for STARTTLS or
  ``MAIL_USE_SSL`` for TLS from the first byte, ``MAIL_SENDER``, ``MAIL_TIMEOUT``).
- ``outbox``: nothing leaves the machine; the message is only kept in
  ``mail_messages`` (the caller stores every message anyway), marked sent with
  transport ``outbox``. Development and the tests use it.

A transport that cannot send (smtp without a server or a sender, an unknown transport)
says so before anything is written (:class:`MailNotConfigured`, a domain error with a
French message), never halfway. A delivery that fails raises :class:`DeliveryFailed`
with the server's answer, which the caller keeps on the message (status ``failed``).
"""

from __future__ import annotations

import smtplib
import ssl
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Protocol

from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.kernel.models import utcnow

TRANSPORTS = ("smtp", "outbox")
FALLBACK_SENDER = "Bou'Sol (APMC) <adhesions@bousol.invalid>"


class MailNotConfigured(DomainError):
    code = "mail_not_configured"
    http_status = 409
    default_message = (
        "L'envoi de courriels n'est pas configuré (MAIL_SERVER, MAIL_SENDER) : "
        "aucun courriel n'a été envoyé."
    )


class DeliveryFailed(Exception):
    """The transport could not hand the message over; ``str()`` says why."""


class Mailer(Protocol):
    transport: str

    def problem(self) -> str | None:
        """Why this mailer cannot send at all (configuration), or None."""

    def sender(self) -> str:
        """The From address of the messages."""

    def send(self, message: EmailMessage) -> None:
        """Deliver one message, or raise :class:`DeliveryFailed`."""


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true", "yes", "on", "oui")


@dataclass(frozen=True)
class SmtpSettings:
    server: str = ""
    port: int = 587
    username: str = ""
    password: str = ""
    use_tls: bool = True  # STARTTLS after connecting
    use_ssl: bool = False  # TLS from the first byte (port 465)
    sender: str = ""
    timeout: float = 10.0


class SmtpMailer:
    transport = "smtp"

    def __init__(self, settings: SmtpSettings):
        self.settings = settings

    def problem(self) -> str | None:
        s = self.settings
        if not s.server:
            return ("L'envoi de courriels n'est pas configuré : indiquez le serveur SMTP "
                    "(MAIL_SERVER). Aucun courriel n'a été envoyé.")
        if not s.sender or "@" not in parseaddr(s.sender)[1]:
            return ("L'envoi de courriels n'est pas configuré : indiquez l'adresse de "
                    "l'expéditeur (MAIL_SENDER). Aucun courriel n'a été envoyé.")
        if s.use_tls and s.use_ssl:
            return ("Configuration des courriels incohérente : MAIL_USE_TLS (STARTTLS) et "
                    "MAIL_USE_SSL ne vont pas ensemble. Aucun courriel n'a été envoyé.")
        if not 0 < s.port < 65536:
            return "Port SMTP invalide (MAIL_PORT). Aucun courriel n'a été envoyé."
        return None

    def sender(self) -> str:
        return self.settings.sender

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            if s.use_ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.server, s.port, timeout=s.timeout,
                    context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(s.server, s.port, timeout=s.timeout)
            with client:
                if s.use_tls:
                    client.starttls(context=ssl.create_default_context())
                if s.username:
                    client.login(s.username, s.password)
                client.send_message(message)
        except (OSError, ValueError) as error:  # SMTP, timeout and TLS errors are OSErrors
            raise DeliveryFailed(f"{type(error).__name__}: {error}"[:500]) from error


class OutboxMailer:
    """Nothing leaves: the message stays in ``mail_messages`` for the mail page."""

    transport = "outbox"

    def __init__(self, sender: str = ""):
        self._sender = sender or FALLBACK_SENDER

    def problem(self) -> str | None:
        return None

    def sender(self) -> str:
        return self._sender

    def send(self, message: EmailMessage) -> None:
        return None


class UnusableMailer:
    """A configuration that names no known transport: refuses with the reason."""

    def __init__(self, transport: str, reason: str):
        self.transport = transport[:16]
        self._reason = reason

    def problem(self) -> str | None:
        return self._reason

    def sender(self) -> str:
        return FALLBACK_SENDER

    def send(self, message: EmailMessage) -> None:
        raise DeliveryFailed(self._reason)


def from_config(config: Mapping[str, object]) -> Mailer:
    """The mailer the configuration (Flask's ``app.config`` or any mapping) names."""
    transport = str(config.get("MAIL_TRANSPORT") or "smtp").strip().lower()
    sender = str(config.get("MAIL_SENDER") or "")
    if transport == "outbox":
        return OutboxMailer(sender)
    if transport != "smtp":
        return UnusableMailer(transport, (
            f"Transport de courriel inconnu : {transport!r} (attendu : smtp ou outbox). "
            "Aucun courriel n'a été envoyé."))
    try:
        port = int(str(config.get("MAIL_PORT") or 587))
        timeout = float(str(config.get("MAIL_TIMEOUT") or 10))
    except ValueError:
        return UnusableMailer(transport, "MAIL_PORT et MAIL_TIMEOUT doivent être des "
                                         "nombres. Aucun courriel n'a été envoyé.")
    return SmtpMailer(SmtpSettings(
        server=str(config.get("MAIL_SERVER") or "").strip(), port=port,
        username=str(config.get("MAIL_USERNAME") or ""),
        password=str(config.get("MAIL_PASSWORD") or ""),
        use_tls=_flag(config.get("MAIL_USE_TLS", True)),
        use_ssl=_flag(config.get("MAIL_USE_SSL", False)),
        sender=sender, timeout=timeout))


def ensure_ready(mailer: Mailer) -> None:
    problem = mailer.problem()
    if problem is not None:
        raise MailNotConfigured(problem)


def build(mailer: Mailer, *, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text UTF-8 message from the mailer's sender."""
    message = EmailMessage()
    sender = mailer.sender()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(body)
    return message


def _header_text(text: str) -> str:
    """Text fit for a header: no control characters nor line or paragraph separators
    (a name typed with one would make the header refuse the whole message)."""
    kept = "".join(" " if unicodedata.category(c)[0] == "C" or unicodedata.category(c)
                   in ("Zl", "Zp") else c for c in text)
    return " ".join(kept.split())


def display_address(name: str, address: str) -> str:
    """``Name <address>`` with the name encoded as e-mail headers need."""
    try:
        username, _, domain = address.partition("@")
        return str(Address(display_name=_header_text(name), username=username,
                           domain=domain))
    except (ValueError, IndexError):
        return address
