"""A small, realistic demo dataset for an empty database (``flask bousol demo``).

Everything goes through the same operations as real use, so the demo ledger is a real
one: ``flask bousol verify`` passes on it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import func, select, update

from bousol.ledger.access.parties import create_user
from bousol.ledger.books import operations, phases
from bousol.ledger.books.models import Party, User
from bousol.ledger.ccas import voucher_batches, vouchers
from bousol.ledger.desk import exchange as desk_exchange
from bousol.ledger.desk import note_operations, notes
from bousol.ledger.desk import reconversion_requests as reconversions
from bousol.ledger.desk.models import Desk
from bousol.ledger.kernel.actors import SYSTEM, Actor, Role
from bousol.ledger.kernel.clock import now as clock_now
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.merchants import approval, payment_requests, refunds

PASSWORD = "bousol-demo"  # noqa: S105 - demo data only, printed on purpose

USERS = [
    # username, role, name, filière
    ("tresoriere", Role.ADMIN, None, None),
    ("guichet", Role.BANK, None, None),
    ("marie", Role.SOLISTE, "Marie Lefebvre", None),
    ("karim", Role.SOLISTE, "Karim Benali", None),
    ("lucie", Role.SOLISTE, "Lucie Caron", None),
    ("boulangerie", Role.PRESTATAIRE, "Boulangerie du Vieux Boulogne", "alimentation"),
    ("maraicher", Role.PRESTATAIRE, "Les Jardins de Desvres", "alimentation"),
    ("librairie", Role.PRESTATAIRE, "Librairie Le Détour", "loisirs-culture"),
    ("cordonnerie", Role.PRESTATAIRE, "Cordonnerie de la Liane", "services-de-proximite"),
    ("velo", Role.PRESTATAIRE, "Vélo Côte d'Opale", "mobilite-douce"),
    ("ecohabitat", Role.PRESTATAIRE, "Éco-Habitat Boulonnais", "habitat-durable"),
    ("ccas", Role.CCAS, "CCAS de Boulogne-sur-Mer", None),
]


def load(new_uow: Callable[[], UnitOfWork]) -> list[tuple[str, str, str | None]] | None:
    """Load the demo into an empty database; return the users made, or None if not empty."""
    with new_uow() as uow:
        if uow.session.scalar(select(func.count()).select_from(User)):
            return None

    actors: dict[str, Actor] = {}
    made = []
    for username, role, name, filiere in USERS:
        created = create_user(new_uow(), SYSTEM, username=username, password=PASSWORD,
                              role=role, name=name, filiere=filiere)
        actors[username] = Actor(created.user_id, role, party_code=created.party_code,
                                 username=username)
        made.append((username, role.value, created.party_code))
    code = {u: a.party_code for u, a in actors.items()}
    bank = actors["guichet"]

    operations.record_subsidy(new_uow(), bank, euros="500.00",
                              memo="Subvention de la Communauté d'agglomération du Boulonnais")
    for who, euros, tender in (("marie", "40.00", "cash"), ("karim", "100.00", "card"),
                               ("lucie", "20.00", "cash"), ("ccas", "300.00", "transfer")):
        desk_exchange.exchange(new_uow(), bank, party_code=code[who], euros=euros,
                            tender=tender)
    for payer, payee, amount, memo in (
        ("marie", "boulangerie", "12.50", "Pain et viennoiseries"),
        ("marie", "librairie", "18.90", "Roman"),
        ("karim", "velo", "45.00", "Révision du vélo"),
        ("karim", "boulangerie", "8.20", None),
        ("lucie", "cordonnerie", "9.00", "Ressemelage"),
    ):
        operations.pay(new_uow(), actors[payer], payee_code=code[payee], amount=amount,
                       memo=memo)
    operations.bank_desk_cash(new_uow(), bank, euros="60.00",
                              memo="Remise des espèces de la journée")
    operations.reconvert(new_uow(), bank, prestataire_code=code["velo"], bousols="20.00",
                         memo="Reconversion mensuelle")
    _notes(new_uow, bank, code)
    made += _prestataires_and_payments(new_uow, actors, code)
    _ccas_aid(new_uow, actors, code)
    _members_and_partners(new_uow, actors, code)
    _collective(new_uow, actors)
    _separated_duties(new_uow, actors, code)
    return made


def _separated_duties(new_uow: Callable[[], UnitOfWork], actors: dict, code: dict) -> None:
    """Two people for money leaving (docs/duties.md): the bike shop's IBAN typed at the
    desk and validated by the treasurer, a batch the desk prepared that waits for the
    treasurer's release; the bakery's new IBAN waits for its own confirmation."""
    from bousol.ledger.desk import iban_changes, payouts

    bank, treasurer = actors["guichet"], actors["tresoriere"]
    asked = iban_changes.request_change(new_uow(), bank, code["velo"],
                                        "FR76 3000 6000 0112 3456 7890 189")
    iban_changes.confirm(new_uow(), treasurer, asked.change_id)
    payouts.create_batch(new_uow(), bank)
    iban_changes.request_change(new_uow(), bank, code["boulangerie"],
                                "BE68 5390 0754 7034")


def _notes(new_uow: Callable[[], UnitOfWork], bank: Actor, code: dict) -> None:
    """A series of notes printed three weeks ago, valid six months: delivered, put in
    the vault, part of it at the desk G1 (the clerk ``guichet``'s); Karim buys notes,
    and the baker deposits one he was paid with."""
    with new_uow() as uow:
        uow.session.execute(
            update(User).where(User.username == "guichet")
            .values(desk_id=select(Desk.id).where(Desk.code == "G1").scalar_subquery()))
        uow.commit()
    today = paris_today()
    printed = today - dt.timedelta(days=21)
    series = f"A{printed:%y}"
    notes.register_series(new_uow(), bank, code=series, printed_on=printed,
                          valid_until=printed + dt.timedelta(days=182))
    for value, first in ((20, 1), (10, 1001), (5, 2001), (2, 3001), (1, 4001)):
        notes.register_delivery(new_uow(), bank, series_code=series, denomination=value,
                                first=first, last=first + 199, memo="Livraison de l'imprimeur")
        notes.move(new_uow(), bank, serials=f"{series}-{first:06d}..{first + 199:06d}",
                   to_place="vault")
        notes.move(new_uow(), bank, serials=f"{series}-{first:06d}..{first + 99:06d}",
                   to_place="desk", to_desk="G1")
    note_operations.exchange_notes(new_uow(), bank, party_code=code["karim"], euros="60.00",
                         counts={20: 3, 2: 1, 1: 1}, tender="cash")
    note_operations.deposit(new_uow(), bank, prestataire_code=code["boulangerie"],
                  serials=f"{series}-000001", memo="Recette en billets")


ADDRESSES = {
    "boulangerie": ("12 rue de Lille", "Boulogne-sur-Mer",
                    "Du mardi au samedi : 7 h – 19 h\nDimanche : 7 h – 12 h 30",
                    "Pain au levain, farines du Boulonnais."),
    "maraicher": ("Route de Samer", "Desvres", "Vendredi et samedi : 9 h – 18 h",
                  "Légumes de saison cultivés sans pesticides, paniers à la semaine."),
    "librairie": ("4 Grande Rue", "Boulogne-sur-Mer", "Du mardi au samedi : 10 h – 19 h",
                  "Librairie indépendante : romans, jeunesse, auteurs de la Côte d'Opale."),
    "cordonnerie": ("2 quai de la Liane", "Saint-Léonard", "Du lundi au vendredi : 9 h – 18 h",
                    "Ressemelage, clés, petite maroquinerie."),
    "velo": ("1 boulevard Sainte-Beuve", "Boulogne-sur-Mer", "Du mardi au samedi : 9 h – 18 h",
             "Réparation, location et vente de vélos, remorques pour les courses."),
    "ecohabitat": ("10 rue Carnot", "Wimereux", "Sur rendez-vous",
                   "Isolation en matériaux biosourcés, conseils en rénovation."),
}


def _prestataires_and_payments(new_uow: Callable[[], UnitOfWork], actors: dict,
                               code: dict) -> list[tuple[str, str, str | None]]:
    """The directory's addresses and hours, an application waiting for a decision, a
    suspended merchant; a paid and an open till request, a refund; the B2B phase open
    with a supplier paid and an invoice waiting; reconversion requests."""
    parties = Party.__table__
    with new_uow() as uow:
        for who, (address, commune, _hours, _text) in ADDRESSES.items():
            uow.conn.execute(update(parties).where(parties.c.code == code[who])
                             .values(address=address, commune=commune))
        uow.commit()
    for who, (_address, _commune, hours, text) in ADDRESSES.items():
        approval.update_public_profile(new_uow(), actors[who], opening_hours=hours,
                                       description=text)
    applied = approval.apply(
        new_uow(), username="fromagerie", password=PASSWORD, submit=True,
        name="Fromagerie du Portel", legal_form="sarl", siret="900 123 456 00015",
        address="5 rue Carnot", commune="Le Portel", filiere="alimentation",
        contact_name="Paul Martin", phone="03 21 31 00 00",
        email="paul.martin@fromagerie.example", iban="FR76 3000 6000 0112 3456 7890 189",
        charter_accepted=True)
    admin = actors["tresoriere"]
    approval.suspend(new_uow(), admin, code["ecohabitat"],
                     "Attestation d'assurance décennale expirée : en attente du renouvellement.")

    # At the bakery's till: one request paid from Marie's phone, one still waiting.
    paid = payment_requests.create_till_request(new_uow(), actors["boulangerie"],
                                                amount="6.40", reference="Ticket 118")
    payment_requests.pay(new_uow(), actors["lucie"], token=paid.token)
    payment_requests.create_till_request(new_uow(), actors["boulangerie"],
                                         amount="3.20", reference="Ticket 119")
    # The bookshop gives back part of a payment (a damaged book exchanged for a cheaper one).
    book = operations.pay(new_uow(), actors["karim"], payee_code=code["librairie"],
                          amount="15.00", memo="Beau livre")
    refunds.refund(new_uow(), actors["librairie"], payment_entry_id=book.entry_id,
                   amount="4.00", memo="Échange contre une édition de poche")

    # B2B: the association opens the phase; the bakery pays the market gardener, who
    # also sends it an invoice request still waiting.
    phases.switch(new_uow(), admin, phase="b2b", on=True,
                  reason="Conseil collégial : ouverture du circuit B2B")
    operations.pay(new_uow(), actors["boulangerie"], payee_code=code["maraicher"],
                   amount="6.00", memo="Facture F-2026-0042")
    payment_requests.create_invoice_request(
        new_uow(), actors["maraicher"], customer_code=code["boulangerie"], amount="4.50",
        reference="Facture F-2026-0043")

    # Reconversion requests: the bike shop's executed at the desk, the bakery's waiting.
    bank = actors["guichet"]
    done = reconversions.request(new_uow(), actors["velo"], "10.00",
                                 memo="Fin de mois")
    reconversions.execute(new_uow(), bank, done.request_id)
    reconversions.request(new_uow(), actors["boulangerie"], "5.00",
                          memo="Fin de semaine")
    return [("fromagerie", Role.PRESTATAIRE.value, applied.party_code)]


def _ccas_aid(new_uow: Callable[[], UnitOfWork], actors: dict, code: dict) -> None:
    """The public-policy phase open; a winter food programme funded at the desk; paper
    vouchers (one partly spent at the bakery), a CSV batch, and earmarked Bou'Sols on
    Lucie's account, partly spent at the market gardener's."""
    ccas, bank = actors["ccas"], actors["guichet"]
    phases.switch(new_uow(), actors["tresoriere"], phase="ccas", on=True,
                  reason="Convention avec le CCAS de Boulogne-sur-Mer")
    today = paris_today()
    winter = vouchers.create_programme(
        new_uow(), ccas, name="Aide alimentaire hiver 2026", budget="5000.00",
        starts_on=today - dt.timedelta(days=7), ends_on=today + dt.timedelta(days=120),
        filieres=["alimentation"], default_validity_days=60, multi_use=True)
    desk_exchange.exchange(new_uow(), bank, party_code=code["ccas"], euros="400.00",
                        tender="transfer", programme_id=winter.id,
                        memo="Virement du CCAS : aide alimentaire")
    paper = vouchers.grant(new_uow(), ccas, beneficiary_ref="DOS-2026-014",
                           beneficiary_name="Mme D.", amount="40.00",
                           programme_id=winter.id)
    vouchers.redeem(new_uow(), actors["boulangerie"], code=paper.code, amount="12.80")
    vouchers.grant(new_uow(), ccas, beneficiary_ref="DOS-2026-015", amount="30.00",
                   programme_id=winter.id)
    voucher_batches.grant_batch(new_uow(), ccas, programme_id=winter.id,
                         text="référence;montant\nDOS-2026-020;25,00\nDOS-2026-021;25,00\n")
    earmarked = vouchers.grant(new_uow(), ccas, beneficiary_ref="DOS-2026-016",
                               amount="20.00", programme_id=winter.id,
                               soliste_code=code["lucie"])
    vouchers.pay_with_earmarked(new_uow(), actors["lucie"], voucher_id=earmarked.id,
                                payee_code=code["maraicher"], amount="7.50")


def _members_and_partners(new_uow: Callable[[], UnitOfWork], actors: dict,
                          code: dict) -> None:
    """Issue 7's members: Marie renews at the desk; Karim's membership ends this month
    (he has an e-mail: the reminders page has someone to remind) and so does Lucie's
    (no e-mail); three local partners of the acteurs-locaux college, two of which paid
    their fee to the association (a transfer, a cheque)."""
    from bousol.ledger.association import membership
    from bousol.ledger.association.membership import month_bounds
    from bousol.ledger.desk import members

    treasurer = actors["tresoriere"]
    members.renew_membership(new_uow(), actors["guichet"], party_code=code["marie"],
                             tender="cash")
    month_end = month_bounds(paris_today())[1]
    with new_uow() as uow:
        # A demo shortcut (no fee entry): memberships that end this month.
        for who, email in (("marie", "marie.lefebvre@example.org"),
                           ("karim", "karim.benali@example.org"), ("lucie", None)):
            values: dict = {"email": email}
            if who != "marie":
                values["membership_until"] = month_end
            uow.session.execute(update(Party).where(Party.code == code[who]).values(**values))
        uow.commit()
    cab = membership.create_partner(
        new_uow(), treasurer, name="CAB - Communauté d'agglomération du Boulonnais",
        category="collectivite", contact_name="Service développement économique",
        email="economie@cab.example", address="1 boulevard du Bassin Napoléon",
        commune="Boulogne-sur-Mer")
    credit = membership.create_partner(
        new_uow(), treasurer, name="Crédit Municipal de Boulogne-sur-Mer",
        category="credit_municipal", contact_name="Direction",
        email="direction@credit-municipal.example", phone="03 21 00 00 00",
        commune="Boulogne-sur-Mer")
    membership.create_partner(
        new_uow(), treasurer, name="APES - Acteurs pour une économie solidaire",
        category="reseau_ess", email="contact@apes.example", commune="Lille")
    membership.record_partner_fee(new_uow(), treasurer, cab, "transfer")
    membership.record_partner_fee(new_uow(), treasurer, credit, "cheque")


def _collective(new_uow: Callable[[], UnitOfWork], actors: dict) -> None:
    """The management collective: four seats in the three colleges; a decision adopted
    and applied (reactivated notes valid four months: in the settings' history, with
    its decision), and a vote in progress (the reconversion fee at 4 %) that Marie has
    not voted on yet."""
    from bousol.ledger.association import decisions

    now = clock_now()
    for who in ("marie", "karim", "boulangerie", "ccas"):  # seated a month ago
        decisions.add_member(new_uow(), SYSTEM, who, now=now - dt.timedelta(days=30))
    adopted = decisions.propose(
        new_uow(), actors["tresoriere"], title="Billets réactivés valables quatre mois",
        body="Une validité plus courte pousse les billets à circuler (la « fonte ») : le "
             "collectif propose quatre mois au lieu de six.",
        closes_at=now - dt.timedelta(hours=2), effect="setting",
        setting_key="notes.validity_months", setting_value="4",
        now=now - dt.timedelta(days=8))
    for who, choice in (("marie", "for"), ("karim", "for"), ("boulangerie", "against"),
                        ("ccas", "for")):
        decisions.vote(new_uow(), actors[who], adopted, choice,
                       now=now - dt.timedelta(days=7))
    decisions.close(new_uow(), actors["tresoriere"], adopted, now=now)
    fee = decisions.propose(
        new_uow(), actors["boulangerie"], title="Commission de reconversion à 4 %",
        body="Les commerçants demandent une commission plus basse pour reconvertir leurs "
             "Bou'Sols : 4 % au lieu de 5 %.",
        closes_at=now + dt.timedelta(days=13), effect="setting",
        setting_key="reconversion.fee_bp", setting_value="400",
        now=now - dt.timedelta(days=1))
    decisions.vote(new_uow(), actors["boulangerie"], fee, "for")
    decisions.vote(new_uow(), actors["ccas"], fee, "against")
