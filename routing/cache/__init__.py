"""The response cache: exact (Redis) and semantic (pgvector), partitioned per tenant.

- ``config``  the policy's ``cache`` block (mode, TTL, similarity threshold, embedder)
- ``keys``    what makes two requests the same question: the partition (tenant, model,
              system prompt and earlier turns, tools, response format, every sampling
              parameter) and the exact key (partition + the last turn)
- ``exact``   the exact layer in Redis: TTL, a size cap per tenant
- ``replay``  a cached answer as a JSON response or a well-formed SSE stream

A wrong cached answer is worse than a miss: nothing is looked up across partitions, and
errors, cut streams and answers that did not finish with ``stop`` / ``tool_calls`` are
never stored.
"""
