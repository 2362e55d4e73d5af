"""Managing providers: the model catalog, provider endpoints and encrypted credentials.

- ``services``  writes and checks: providers, endpoints (base URL / SSRF checks), credentials
                (AES-GCM, rotation, re-encryption), catalog load, created models
- ``api``       the BYOK API (/api/v1/providers, /credentials, /endpoints)
- ``local``     local endpoints (Ollama, vLLM) found on the machine

The rows themselves are in routing.models (Django's place for them), operator screens in
routing.admin.
"""
