"""The response cache: exact (Redis) and semantic (pgvector), partitioned per tenant.

- ``config``  the policy's ``cache`` block (mode, TTL, similarity threshold, embedder)
- ``keys``    what makes two requests the same question: the partition (tenant, model,
              system prompt and earlier turns, tools, response format, every sampling
              parameter) and the exact key (partition + the last turn)
- ``exact``   the exact layer in Redis: TTL, a size cap per tenant
- ``replay``  a cached answer as a JSON response or a well-formed SSE stream
- ``embedders/`` the semantic layer's text embedders, behind a registry (wordllama by
              default, MiniLM, a provider's embedding model through the adapters)
- ``guards``  what two prompts must agree on for one's answer to serve the other
              (numbers, units, dates, negation, direction, entities, technology, ...),
              over what ``features`` reads from each prompt with ``lexicon``'s word lists
- ``models``  ``CacheEntry``: semantic entries with their embedding (pgvector, HNSW cosine)
- ``semantic`` store, lookup inside one partition (a WHERE filter, never a distance),
              purge, expiry and per-tenant caps; ``tasks`` runs expiry from beat

A wrong cached answer is worse than a miss: nothing is looked up across partitions, and
errors, cut streams and answers that did not finish with ``stop`` / ``tool_calls`` are
never stored.
"""
