"""The audit trail in a treasurer's words (issue 13): what was done — « Vote sur la
décision n° 12 », « Paiement », « Échange au comptoir » — and to which records, named by
their business identity (« Écriture n° 42 (Paiement) »), instead of route templates and
table names. Presentation only: the record itself (bousol/ledger/kernel/audit.py) keeps the
route rule and the raw counts, which the page still shows under « Détail technique »."""

from __future__ import annotations

import json
import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from bousol.ledger.books import queries
from bousol.web.formatting import ngettext

# The route rule or command → the action, in words. ``%(name)s`` takes the first value of
# that column among the record's kept values (the rule itself never holds an id: paths
# can carry secrets, see bousol/web/audit_context.py).
ACTIONS = {
    "POST /connexion": _l("Connexion"),
    "POST /deconnexion": _l("Déconnexion"),
    "POST /langue": _l("Choix de la langue"),
    "POST /mot-de-passe-oublie": _l("Demande de nouveau mot de passe"),
    "POST /mot-de-passe/<token>": _l("Nouveau mot de passe (lien reçu)"),
    "POST /compte/mot-de-passe": _l("Changement de mot de passe"),
    "POST /compte/jetons": _l("Jetons d'accès à l'API"),
    "POST /agrement": _l("Demande d'agrément (formulaire public)"),
    "POST /payer/": _l("Paiement avec un code"),
    "POST /payer/<token>": _l("Paiement d'une demande"),
    "POST /payer/commerce/<code>": _l("Paiement chez un commerçant (QR code fixe)"),
    "POST /payer/bons": _l("Paiement avec des Bou'Sols fléchés"),
    "POST /payer/code-pin": _l("Choix du code PIN"),
    "POST /comptoir/change/<code>": _l("Échange au comptoir"),
    "POST /comptoir/adherents/nouveau": _l("Inscription d'un adhérent au comptoir"),
    "POST /comptoir/adherents/<code>/cotisation": _l("Cotisation encaissée au comptoir"),
    "POST /comptoir/reconversion/<code>": _l("Reconversion au comptoir"),
    "POST /comptoir/reconversions/<int:request_id>/executer":
        _l("Demande de reconversion n° %(request_id)s exécutée"),
    "POST /comptoir/reconversions/<int:request_id>/refuser":
        _l("Demande de reconversion n° %(request_id)s refusée"),
    "POST /comptoir/prestataire/<code>/banque": _l("Coordonnées bancaires d'un prestataire"),
    "POST /comptoir/prestataire/<code>/banque/<int:change_id>/retirer":
        _l("Changement d'IBAN retiré"),
    "POST /comptoir/cloture": _l("Clôture de caisse"),
    "POST /comptoir/cloture/<int:closing_id>/reouverture":
        _l("Réouverture de la clôture n° %(closing_id)s"),
    "POST /comptoir/adherents/<code>/premier-code": _l("Code de premier mot de passe remis"),
    "POST /premier-mot-de-passe": _l("Premier mot de passe choisi"),
    "POST /comptoir/billets/serie": _l("Nouvelle série de billets"),
    "POST /comptoir/billets/livraison": _l("Livraison de billets"),
    "POST /comptoir/billets/mouvement": _l("Mouvement de billets"),
    "POST /comptoir/billets/reactivation": _l("Réactivation de billets"),
    "POST /comptoir/billets/depot/<code>": _l("Dépôt de billets"),
    "POST /prestataire/encaisser": _l("Demande de paiement en caisse"),
    "POST /prestataire/paiements/<int:entry_id>/rembourser": _l("Remboursement"),
    "POST /prestataire/fournisseur/payer": _l("Paiement d'un fournisseur"),
    "POST /prestataire/factures/nouvelle": _l("Demande de paiement d'une facture"),
    "POST /prestataire/factures/<token>/refuser": _l("Facture refusée"),
    "POST /prestataire/demandes/<int:request_id>/annuler":
        _l("Demande de paiement n° %(request_id)s annulée"),
    "POST /prestataire/reconversions": _l("Demande de reconversion"),
    "POST /prestataire/reconversions/<int:request_id>/annuler":
        _l("Demande de reconversion n° %(request_id)s annulée"),
    "POST /prestataire/bons": _l("Bon d'aide encaissé"),
    "POST /prestataire/bons/<code>": _l("Bon d'aide encaissé"),
    "POST /prestataire/agrement": _l("Demande d'agrément"),
    "POST /prestataire/agrement/corriger": _l("Demande d'agrément corrigée"),
    "POST /prestataire/fiche": _l("Fiche publique du prestataire"),
    "POST /prestataire/banque/<int:change_id>/<any(confirmer, refuser):action>":
        _l("Changement d'IBAN confirmé ou refusé par le prestataire"),
    "POST /ccas/programmes/nouveau": _l("Nouveau programme d'aide"),
    "POST /ccas/bons/nouveau": _l("Bon d'aide attribué"),
    "POST /ccas/bons/lot": _l("Lot de bons d'aide (vérification)"),
    "POST /ccas/bons/lot/confirmer": _l("Lot de bons d'aide attribué"),
    "POST /ccas/bons/<code>/annuler": _l("Bon d'aide annulé"),
    "POST /ccas/beneficiaires/<path:ref>": _l("Bénéficiaire du CCAS"),
    "POST /collectif/motions/nouvelle": _l("Proposition d'une décision"),
    "POST /collectif/motions/<int:motion_id>/vote": _l("Vote sur la décision n° %(motion_id)s"),
    "POST /collectif/motions/<int:motion_id>/<any(clore, retirer):action>":
        _l("Décision n° %(motion_id)s close ou retirée"),
    "POST /admin/collectif": _l("Membre ajouté au collectif"),
    "POST /admin/collectif/retirer": _l("Membre retiré du collectif"),
    "POST /admin/phases": _l("Ouverture ou fermeture d'une phase"),
    "POST /admin/prestataires/<code>/<any(approuver, refuser, suspendre, retablir):action>":
        _l("Décision sur un agrément"),
    "POST /admin/adherents/<code>/cotisation": _l("Cotisation enregistrée par l'association"),
    "POST /admin/adherents/echeances/rappels": _l("Rappels d'adhésion envoyés"),
    "POST /admin/partenaires/nouveau": _l("Nouveau partenaire"),
    "POST /admin/partenaires/<code>": _l("Fiche d'un partenaire"),
    "POST /admin/partenaires/<code>/cotisation": _l("Cotisation d'un partenaire"),
    "POST /admin/comptabilite": _l("Plan de correspondance comptable"),
    "POST /admin/comptabilite/fichiers": _l("Fichier FEC d'une année demandé"),
    "POST /admin/utilisateurs/<username>/jetons": _l("Jetons d'accès d'un utilisateur"),
    "POST /admin/virements/lots": _l("Lot de virements préparé"),
    "POST /admin/virements/lots/<int:batch_id>/liberer":
        _l("Lot de virements n° %(batch_id)s libéré"),
    "POST /admin/virements/lots/<int:batch_id>/<any(payer, annuler):action>":
        _l("Lot de virements n° %(batch_id)s payé ou annulé"),
    "POST /admin/virements/iban/<int:change_id>/<any(valider, rejeter):action>":
        _l("Changement d'IBAN validé ou rejeté"),
    "POST /api/v1/tokens": _l("Jeton d'accès à l'API créé"),
    "DELETE /api/v1/tokens/<int:id>": _l("Jeton d'accès à l'API révoqué"),
    "DELETE /api/v1/tokens/current": _l("Jeton d'accès à l'API révoqué"),
    "POST /api/v1/payments": _l("Paiement (API)"),
    "POST /api/v1/exchanges": _l("Échange (API)"),
    "POST /api/v1/exchange-approvals/<int:id>/approve": _l("Échange approuvé (API)"),
    "POST /api/v1/exchange-approvals/<int:id>/refuse": _l("Échange refusé (API)"),
    "POST /comptoir/changes-a-approuver/<int:approval_id>/approuver": _l(
        "Échange approuvé par une deuxième personne"),
    "POST /comptoir/changes-a-approuver/<int:approval_id>/refuser": _l(
        "Échange refusé par une deuxième personne"),
    "POST /comptoir/changes-a-approuver/<int:approval_id>/annuler": _l(
        "Demande d'échange annulée"),
    "POST /api/v1/reconversions": _l("Reconversion (API)"),
    "POST /api/v1/payment-requests": _l("Demande de paiement (API)"),
    "POST /api/v1/payment-requests/<int:id>/pay": _l("Paiement d'une demande (API)"),
    "POST /api/v1/vouchers": _l("Bon d'aide attribué (API)"),
    "POST /api/v1/vouchers/<code>/redemptions": _l("Bon d'aide encaissé (API)"),
    "flask bousol setting": _l("Réglage changé (ligne de commande)"),
    "flask bousol phase": _l("Phase ouverte ou fermée (ligne de commande)"),
    "flask bousol subsidy": _l("Subvention au fonds de bonification"),
    "flask bousol bank-cash": _l("Remise de la caisse au fonds de garantie"),
    "flask bousol reverse": _l("Contre-passation d'une écriture"),
    "flask bousol expire-vouchers": _l("Expiration des bons d'aide échus"),
    "flask bousol send-reminders": _l("Envoi des rappels d'adhésion"),
    "flask bousol close-motions": _l("Clôture des décisions échues"),
    "flask bousol create-user": _l("Création d'un utilisateur"),
    "flask bousol demo": _l("Chargement de la démonstration"),
}

# Table → the record's French noun (singular, plural). Tables absent from both maps are
# named as they are; HIDDEN ones are bookkeeping of the machinery, not a user's record.
RECORDS = {
    "entries": (_l("Écriture"), _l("Écritures")),
    "postings": (_l("Ligne d'écriture"), _l("Lignes d'écriture")),
    "accounts": (_l("Compte"), _l("Comptes")),
    "parties": (_l("Adhérent"), _l("Adhérents")),
    "users": (_l("Utilisateur"), _l("Utilisateurs")),
    "login_attempts": (_l("Tentative de connexion"), _l("Tentatives de connexion")),
    "password_resets": (_l("Lien de nouveau mot de passe"), _l("Liens de nouveau mot de passe")),
    "setting_changes": (_l("Réglage"), _l("Réglages")),
    "desks": (_l("Guichet"), _l("Guichets")),
    "note_series": (_l("Série de billets"), _l("Séries de billets")),
    "notes": (_l("Billet"), _l("Billets")),
    "note_moves": (_l("Mouvement de billets"), _l("Mouvements de billets")),
    "payout_batches": (_l("Lot de virements"), _l("Lots de virements")),
    "payouts": (_l("Virement"), _l("Virements")),
    "iban_changes": (_l("Changement d'IBAN"), _l("Changements d'IBAN")),
    "exchange_approvals": (_l("Validation d'un change"), _l("Validations de change")),
    "cash_closings": (_l("Clôture de caisse"), _l("Clôtures de caisse")),
    "cash_closing_reopenings": (_l("Réouverture de caisse"), _l("Réouvertures de caisse")),
    "approval_decisions": (_l("Décision d'agrément"), _l("Décisions d'agrément")),
    "payment_requests": (_l("Demande de paiement"), _l("Demandes de paiement")),
    "refunds": (_l("Remboursement"), _l("Remboursements")),
    "reconversion_requests": (_l("Demande de reconversion"), _l("Demandes de reconversion")),
    "aid_programmes": (_l("Programme d'aide"), _l("Programmes d'aide")),
    "beneficiaries": (_l("Bénéficiaire"), _l("Bénéficiaires")),
    "vouchers": (_l("Bon d'aide"), _l("Bons d'aide")),
    "voucher_batches": (_l("Lot de bons d'aide"), _l("Lots de bons d'aide")),
    "voucher_redemptions": (_l("Utilisation d'un bon d'aide"), _l("Utilisations de bons d'aide")),
    "api_tokens": (_l("Jeton d'accès à l'API"), _l("Jetons d'accès à l'API")),
    "partners": (_l("Partenaire"), _l("Partenaires")),
    "mail_messages": (_l("Courriel"), _l("Courriels")),
    "collective_members": (_l("Siège au collectif"), _l("Sièges au collectif")),
    "motions": (_l("Décision"), _l("Décisions")),
    "votes": (_l("Vote"), _l("Votes")),
    "fec_mappings": (_l("Correspondance comptable"), _l("Correspondances comptables")),
}
HIDDEN = frozenset({"idempotency_keys", "counters", "note_move_items", "entry_kinds",
                    "first_password_codes"})
_OPS = {"insert": _l("ajout"), "update": _l("modification"), "delete": _l("suppression")}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _changes(details: str) -> list[dict]:
    try:
        changes = json.loads(details).get("changes", [])
    except (ValueError, AttributeError):
        return []
    return [c for c in changes if isinstance(c, dict)]


def _first_values(changes: list[dict]) -> dict[str, str]:
    found: dict[str, str] = {}
    for change in changes:
        for column, values in (change.get("values") or {}).items():
            if values and column not in found:
                found[column] = str(values[0])
    return found


def action_label(action: str, details: str) -> str:
    """What the record's request or command did, in the interface's language; an
    unknown rule is shown as it is (a new route not named here yet still shows)."""
    label = ACTIONS.get(action)
    if label is None:
        if action.startswith("flask bousol"):
            return _("Commande « %(command)s »", command=action)
        if " " not in action:  # "system": code run outside a request and a command
            return action
        return _("Autre opération (%(action)s)", action=action)
    text = str(label)
    names = _PLACEHOLDER.findall(text)
    if not names:
        return text
    values = _first_values(_changes(details))
    # An id that is not in the kept values: the label without its number.
    if all(name in values for name in names):
        return text % {name: values[name] for name in names}
    return re.sub(r"\s*n° %\(\w+\)s", "", text)


def _kind_label(kind: str) -> str:
    label = queries.KIND_LABELS.get(kind)
    return _(label) if label else kind


def describe(details: str) -> list[str]:
    """The records the transaction touched, by business identity, one line per table:
    « Écriture n° 42 (Paiement) : ajout », « 2 lignes d'écriture : ajout ». Technical
    tables (idempotency keys, counters…) are left out."""
    lines = []
    for change in _changes(details):
        table = str(change.get("table"))
        if table in HIDDEN:
            continue
        rows = change.get("rows") or 0
        values = change.get("values") or {}
        singular, plural = RECORDS.get(table, (table, table))
        op = str(_OPS.get(change.get("op"), change.get("op")))
        ids = [str(v) for v in values.get("id", [])]
        if ids:
            noun = singular if len(ids) == 1 else plural
            what = _("%(noun)s n° %(ids)s", noun=noun, ids=", ".join(ids))
            if rows > len(ids):
                what = ngettext("%(what)s et %(num)d autre", "%(what)s et %(num)d autres",
                                rows - len(ids), what=what)
        else:
            noun = str(singular if rows == 1 else plural).lower()
            what = _("%(num)d %(noun)s", num=rows, noun=noun)
        extra = []
        if table == "entries" and values.get("kind"):
            extra.append(", ".join(_kind_label(str(k)) for k in values["kind"]))
        elif table == "setting_changes" and values.get("key"):
            extra.append(", ".join(f"{k} = {v}" for k, v in
                                   zip(values["key"], values.get("value", []), strict=False)))
        elif values.get("status"):
            extra.append(_("état : %(status)s", status=", ".join(map(str, values["status"]))))
        if table == "votes" and values.get("motion_id"):
            extra.append(_("décision n° %(id)s", id=values["motion_id"][0]))
        text = f"{what} ({'; '.join(extra)})" if extra else what
        lines.append(_("%(what)s : %(op)s", what=text, op=op))
    return lines
