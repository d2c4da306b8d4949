"""Domain errors with stable codes.

The code is part of the contract (JSON API, tests); the message is French and meant
for the person at the screen. ``http_status`` is what the web layer answers.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "domain_error"
    http_status = 422
    default_message = "Opération refusée."

    def __init__(self, message: str | None = None, **details: object) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class InvalidAmount(DomainError):
    code = "invalid_amount"
    default_message = (
        "Montant invalide : un nombre positif, au plus deux décimales, "
        "au plus 1 000 000,00."
    )


class InvalidInput(DomainError):
    code = "invalid_input"
    default_message = "Donnée invalide."


class InsufficientFunds(DomainError):
    code = "insufficient_funds"
    default_message = "Solde insuffisant."


class ReserveInsufficient(DomainError):
    code = "reserve_insufficient"
    http_status = 409
    default_message = "Le fonds de garantie en euros ne peut pas payer cette reconversion."


class BonusFundInsufficient(DomainError):
    code = "bonus_fund_insufficient"
    http_status = 409
    default_message = (
        "Le fonds de bonification ne couvre pas la bonification de ce change : "
        "enregistrez d'abord une subvention."
    )


class DeskCashInsufficient(DomainError):
    code = "desk_cash_insufficient"
    http_status = 409
    default_message = "La caisse du comptoir ne contient pas ce montant."


class FlowNotAllowed(DomainError):
    code = "flow_not_allowed"
    http_status = 403
    default_message = "Ce paiement n'est pas autorisé dans la phase en cours."


class Forbidden(DomainError):
    code = "forbidden"
    http_status = 403
    default_message = "Vous n'avez pas le droit de faire cette opération."


class UnknownAccount(DomainError):
    code = "unknown_account"
    http_status = 404
    default_message = "Compte inconnu."


class UnknownParty(DomainError):
    code = "unknown_party"
    http_status = 404
    default_message = "Adhérent inconnu."


class UnknownEntry(DomainError):
    code = "unknown_entry"
    http_status = 404
    default_message = "Écriture inconnue."


class AlreadyReversed(DomainError):
    code = "already_reversed"
    http_status = 409
    default_message = "Cette écriture a déjà été contre-passée."


class NotReversible(DomainError):
    code = "not_reversible"
    http_status = 409
    default_message = "Une contre-passation ne se contre-passe pas."


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"
    http_status = 409
    default_message = "Cette clé d'idempotence a déjà servi pour une autre demande."


class DuplicateUser(DomainError):
    code = "duplicate_user"
    http_status = 409
    default_message = "Cet identifiant est déjà pris."
