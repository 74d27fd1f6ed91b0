"""Accounts: sign-up, log-in, sessions and account settings, over local accounts (the
gateway's own tables and tokens) or a Cognito user pool, behind one interface.

- :mod:`.provider` — :class:`~.provider.AuthProvider`, what the auth endpoints need.
- :mod:`.local`, :mod:`.tokens` — local accounts and the tokens the gateway mints.
- :mod:`.cognito`, :mod:`.cognito_client` — a Cognito user pool and its API client.
- :mod:`.policy` — what an e-mail address and a password must be.
- :mod:`.recovery`, :mod:`.local_recovery`, :mod:`.cognito_recovery` — password reset,
  confirmation and address-change mail, profile edits, deletion.
- :mod:`.mail` — sending mail (SMTP or files) after the answer.
- :mod:`.commands` — the operator's commands (admin group, account list).
- :mod:`.auth_api`, :mod:`.account_api` — the ``/api/auth`` routes.
- :mod:`.models`, :mod:`.schemas` — the tables and the wire format.
"""
