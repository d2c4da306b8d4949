"""Bou'Sol: the ledger of the local currency of the Boulonnais.

The package itself loads nothing: ``bousol.ledger`` (the business rules) imports no
Flask, and the web application is built by :func:`bousol.app.create_app`.
"""
