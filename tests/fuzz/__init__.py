"""The outside fuzzer's kind of test, kept in the suite (issue 7): seeded mutations of valid
requests to /v1 (test_gateway_fuzz) and /api/v1 (test_management_api_fuzz).

Cases are deterministic for a seed (``AURA_FUZZ_SEED``, default in cases.SEED), so CI
always sends the same bytes; set another seed locally to explore. A failing family prints
each violation with the method, path, headers, body bytes and response needed to replay it
with curl or httpx.
"""
