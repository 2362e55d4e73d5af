"""Managing routing policy: what a tenant allows, prefers and caps.

- ``document``  the policy as a document: clean, validate, merge, export (YAML and JSON)
- ``services``  writes: update a tenant's policy (versioned, weight history, budgets synced)
- ``convert``   a RoutingPolicy row as the engine's ``Policy``
- ``api``       the /api/v1/router/policy and /weights views
"""
