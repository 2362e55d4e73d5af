"""Routing, by job:

- ``engine/``    deciding: the pure routing engine (types, planner, strategies, classifier)
- ``providers/`` talking to providers: one adapter per wire format, behind one registry
- ``catalog/``   managing providers: catalog, endpoints, encrypted credentials, BYOK API
- ``policy/``    managing policy: the policy document, its services and API
- ``gateway/``   serving the OpenAI-compatible /v1 API (on top of all of the above and billing)
- ``api.py``     the router API: dry-run decisions, outcomes, metrics (``selectors.py``)

``models.py`` and ``admin.py`` hold the rows and their operator screens, where Django looks.
"""
