"""Authentication shared by every service: the one JWT verifier and the request principal.

Two token sources, chosen by configuration alone:

- **Local accounts** (the embedded default): the gateway signs tokens with an ES256 key
  made on first use (``{data_dir}/keys/jwt-signing.pem``, mode 0600) or read from
  ``JWT_PRIVATE_KEY_FILE``, and publishes the public half as a JWKS document at
  ``/.well-known/jwks.json``. Minting is the gateway's
  (:mod:`videoforge.gateway.accounts.tokens`); checking is here, in-process from the
  signing key or, in another process (the gallery in the distributed setup), from the
  key file or the gateway's JWKS URL.
- **Cognito**: tokens are minted by the user pool; the verifier fetches the pool's
  JWKS (RS256) and checks ``iss``, ``client_id`` and ``token_use``.

Whatever the source, the algorithm list is fixed here and never read from the token,
``exp``/``iss``/audience (or ``client_id``)/``token_use`` are required, and an unknown
``kid`` causes at most one JWKS refetch a minute. Every failure is a 401 with a
stable code (``token_invalid``, ``token_expired``, ``auth_required``).

- :mod:`.principal` — who is calling (:class:`~.principal.Principal`), display names,
  and the FastAPI dependencies routes declare.
- :mod:`.keys` — the local ES256 signing key and the key sets a verifier reads
  (in-process, key file, JWKS over HTTP).
- :mod:`.verifier` — the token checks and :func:`~.verifier.build_verifier`.
"""
