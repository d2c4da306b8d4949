"""The ledger and the business rules of the Bou'Sol.

Nothing in this package imports Flask: operations take plain values and the acting
user, raise :class:`~bousol.ledger.kernel.errors.DomainError`, and run in one unit of work.
"""
