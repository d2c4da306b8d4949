"""Domain errors with stable codes.

The code is part of the contract (JSON API, tests); the message is French and meant
for the person at the screen. ``http_status`` is what the web layer answers.

An error may name the input it is about (:attr:`DomainError.field`, the ledger's name
for it: a parameter such as ``amount`` or ``iban``): a form shows the message beside
that field (``bousol.web.forms``). A few classes are always about the same input and
say so once (``default_field``); the others name it when raised, ``field="reason"``.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "domain_error"
    http_status = 422
    default_message = "Opération refusée."
    #: The input this kind of error is about, when it is always the same one (None:
    #: it depends on the call, or it is about no one input).
    default_field: str | None = None

    def __init__(self, message: str | None = None, *, field: str | None = None,
                 **details: object) -> None:
        self.message = message or self.default_message
        # Kept in the details, where the ledger has always put it (some functions name
        # it only on the way out: ``error.details["field"] = name``).
        self.details = {"field": field, **details} if field is not None else details
        super().__init__(self.message)

    @property
    def field(self) -> str | None:
        """The input the error is about: named when raised, else the class's default."""
        named = self.details.get("field")
        return str(named) if named else self.default_field

    @field.setter
    def field(self, name: str | None) -> None:
        if name is None:
            self.details.pop("field", None)
        else:
            self.details["field"] = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class InvalidAmount(DomainError):
    code = "invalid_amount"
    default_field = "amount"
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


# ------------------------------------------------------------------ paper notes


class UnknownSerial(DomainError):
    code = "unknown_serial"
    default_message = "Numéro de billet jamais enregistré."


class NoteNotAvailable(DomainError):
    """A note is not where the operation needs it (at this desk, in circulation…)."""

    code = "note_not_available"
    http_status = 409
    default_message = "Ce billet n'est pas là où l'opération le demande."


class NoteExpired(DomainError):
    code = "note_expired"
    default_message = "Billet périmé : il doit d'abord être réactivé ou échangé au comptoir."


class NoteStillValid(DomainError):
    code = "note_still_valid"
    default_message = "Ce billet est encore valable : il n'y a rien à réactiver."


class NotesMismatch(DomainError):
    """The notes counted do not make the Bou'Sols due."""

    code = "notes_mismatch"
    default_message = "Les billets ne font pas le montant dû."


class NotesOutOfStock(DomainError):
    code = "notes_out_of_stock"
    http_status = 409
    default_message = "Le guichet n'a pas assez de billets valables de cette valeur."


class NoDesk(DomainError):
    code = "no_desk"
    http_status = 409
    default_message = "Aucun guichet n'est attribué à cet utilisateur."


class SerialExists(DomainError):
    code = "serial_exists"
    http_status = 409
    default_message = "Ces numéros de billets sont déjà enregistrés."


class MoveNotAllowed(DomainError):
    code = "note_move_not_allowed"
    default_message = "Ce mouvement de billets n'est pas permis."


# ------------------------------------------------------------------ SEPA payouts


class InvalidIban(InvalidInput):
    code = "invalid_iban"
    default_field = "iban"
    default_message = "IBAN invalide."


class InvalidBic(InvalidInput):
    code = "invalid_bic"
    default_field = "bic"
    default_message = "BIC invalide : 8 ou 11 caractères (ex. AGRIFRPP ou AGRIFRPP123)."


class NotAPrestataire(DomainError):
    code = "not_a_prestataire"
    default_message = "Seul un prestataire reçoit des virements de reconversion."


class PayoutBatchOpen(DomainError):
    code = "payout_batch_open"
    http_status = 409
    default_message = (
        "Un lot de virements est déjà ouvert : marquez-le comme payé ou annulez-le "
        "avant d'en préparer un autre."
    )


class NothingToPay(DomainError):
    code = "nothing_to_pay"
    http_status = 409
    default_message = "Aucun prestataire à payer (ou aucun IBAN renseigné)."


class UnknownPayoutBatch(DomainError):
    code = "unknown_payout_batch"
    http_status = 404
    default_message = "Lot de virements inconnu."


class PayoutBatchTransition(DomainError):
    code = "payout_batch_transition"
    http_status = 409
    default_message = "Ce lot de virements n'est plus ouvert : il ne change plus d'état."


class PayoutNotConfigured(DomainError):
    code = "payout_not_configured"
    http_status = 409
    default_message = (
        "Le compte débiteur des virements (PAYOUT_DEBTOR_NAME, PAYOUT_DEBTOR_IBAN) "
        "n'est pas configuré."
    )


class MembershipChanged(DomainError):
    code = "membership_changed"
    http_status = 409
    default_message = ("La cotisation vient d'être enregistrée (autre clic ou autre guichet) : "
                       "rien n'a été encaissé une seconde fois.")


class FeeChanged(DomainError):
    code = "fee_changed"
    http_status = 409
    default_message = "La cotisation vient de changer : rien n'a été encaissé."


# ------------------------------------------------------------------ prestataires (issue 4)


class NotFound(DomainError):
    """A payment request, reconversion request… that does not exist (or not for you)."""

    code = "not_found"
    http_status = 404
    default_message = "Introuvable."


class InvalidSiret(InvalidInput):
    code = "invalid_siret"
    default_field = "siret"
    default_message = "SIRET invalide : 14 chiffres dont le dernier est une clé de contrôle."


class InvalidDate(InvalidInput):
    code = "invalid_date"
    default_message = "Date invalide (jj/mm/aaaa)."


class ApprovalTransition(DomainError):
    code = "approval_transition"
    http_status = 409
    default_message = (
        "Ce changement de statut d'agrément n'est pas possible depuis le statut actuel."
    )


class AlreadyPaid(DomainError):
    code = "already_paid"
    http_status = 409
    default_message = "Cette demande de paiement a déjà été payée."


class RequestExpired(DomainError):
    code = "request_expired"
    http_status = 410
    default_message = (
        "Cette demande de paiement a expiré : le commerçant doit en créer une nouvelle."
    )


class RequestClosed(DomainError):
    code = "request_closed"
    http_status = 409
    default_message = "Cette demande de paiement a été annulée ou refusée."


class RequestNotForYou(DomainError):
    code = "request_not_for_you"
    http_status = 403
    default_message = "Cette demande de paiement est adressée à un autre adhérent."


class WrongSecret(DomainError):
    code = "wrong_secret"
    http_status = 403
    default_message = "Mot de passe ou code PIN incorrect : rien n'a été payé."


class TooManyAttempts(DomainError):
    code = "too_many_attempts"
    http_status = 429
    default_message = "Trop d'essais manqués : réessayez dans quelques minutes."


class NotRefundable(DomainError):
    code = "not_refundable"
    http_status = 409
    default_message = "Ce paiement ne peut pas être remboursé."


class RefundPeriodOver(DomainError):
    code = "refund_period_over"
    http_status = 409
    default_message = "Le délai de remboursement de ce paiement est dépassé."


class RefundExceedsPayment(DomainError):
    code = "refund_exceeds_payment"
    default_message = "Le remboursement dépasse ce qui reste à rembourser sur ce paiement."


class ReconversionRequestTransition(DomainError):
    code = "reconversion_request_transition"
    http_status = 409
    default_message = "Cette demande de reconversion est déjà traitée."


# ------------------------------------------------------------------ CCAS vouchers (issue 5)


class InvalidCode(DomainError):
    code = "invalid_code"
    default_message = ("Code de bon mal saisi : la lettre de contrôle ne correspond pas. "
                       "Vérifiez chaque caractère.")


class VoucherRedeemed(DomainError):
    code = "voucher_redeemed"
    http_status = 409
    default_message = "Ce bon d'aide a déjà été entièrement utilisé."


class VoucherExpired(DomainError):
    code = "voucher_expired"
    http_status = 410
    default_message = "Ce bon d'aide est expiré : il ne peut plus être accepté."


class VoucherCancelled(DomainError):
    code = "voucher_cancelled"
    http_status = 409
    default_message = "Ce bon d'aide a été annulé par le CCAS : il ne peut plus être accepté."


class FiliereNotAllowed(DomainError):
    code = "filiere_not_allowed"
    http_status = 403
    default_message = "Ce bon d'aide ne peut pas être dépensé dans votre filière."


class AmountExceedsRemaining(DomainError):
    code = "amount_exceeds_remaining"
    default_message = "Le montant dépasse ce qui reste sur le bon d'aide."


# ------------------------------------------------------------------ collegial decisions (issue 7)


class UnknownMotion(DomainError):
    code = "unknown_motion"
    http_status = 404
    default_message = "Décision inconnue."


class NotInCollective(DomainError):
    code = "not_in_collective"
    http_status = 403
    default_message = "Seuls les membres du collectif de gestion votent les décisions."


class AlreadyInCollective(DomainError):
    code = "already_in_collective"
    http_status = 409
    default_message = "Cette personne siège déjà au collectif de gestion."


class MotionClosed(DomainError):
    """The motion takes no more votes or changes: closed, withdrawn, or past its date."""

    code = "motion_closed"
    http_status = 409
    default_message = "Le vote sur cette décision est clos."


class MotionNotDue(DomainError):
    code = "motion_not_due"
    http_status = 409
    default_message = "Le vote est encore ouvert : la décision se clôt après sa date de clôture."


class MotionHasVotes(DomainError):
    code = "motion_has_votes"
    http_status = 409
    default_message = ("Des membres ont déjà voté : la décision ne peut plus être retirée, "
                       "le vote va jusqu'à sa clôture.")


# ---------------------------------------------------------------- separation of duties (issue 13)


class SecondPersonRequired(DomainError):
    """The two-person rule: the user who asked cannot also confirm, release or approve."""

    code = "second_person_required"
    http_status = 403
    default_message = ("Une autre personne doit confirmer : celle qui a demandé ne peut "
                       "pas valider elle-même.")


class IbanChangeTransition(DomainError):
    code = "iban_change_transition"
    http_status = 409
    default_message = "Ce changement d'IBAN n'est plus en attente."


class UnknownIbanChange(DomainError):
    code = "unknown_iban_change"
    http_status = 404
    default_message = "Changement d'IBAN inconnu."


class BonusAdvanceExceeded(DomainError):
    code = "bonus_advance_exceeded"
    http_status = 409
    default_message = ("Le fonds de bonification a atteint son avance maximale : "
                       "enregistrez une subvention avant d'autres changes.")



class ExchangeApprovalTransition(DomainError):
    code = "exchange_approval_transition"
    http_status = 409
    default_message = "Cette demande de change n'est plus en attente d'approbation."


class UnknownExchangeApproval(DomainError):
    code = "unknown_exchange_approval"
    http_status = 404
    default_message = "Demande de change inconnue."


class NotesAboveApprovalLimit(DomainError):
    """Exchanges in notes are never held for approval (the notes would wait in no one's
    hands): above the thresholds, the desk exchanges electronically (docs/duties.md)."""

    code = "notes_above_approval_limit"
    http_status = 409
    default_message = ("Ce change dépasse le seuil qui demande l'approbation d'une deuxième "
                       "personne : il ne peut pas se faire en billets. Faites un change "
                       "électronique, qui attendra cette approbation.")


class EarmarkedVoucherOpen(DomainError):
    """Erasing a beneficiary whose earmarked voucher is still open (issue 13): unlinked
    from its soliste, it would become a bearer voucher anyone knowing its code spends."""

    code = "earmarked_voucher_open"
    http_status = 409
    default_message = ("Ce bénéficiaire a encore un bon crédité sur un compte soliste : "
                       "annulez-le d'abord, puis effacez ses données.")
