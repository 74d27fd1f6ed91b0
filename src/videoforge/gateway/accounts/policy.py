"""What an e-mail address and a password must be, the same for local accounts and Cognito.

Addresses have one stored form (:func:`normalise_email`). Passwords are refused when
short, on leaked-password lists, easy to guess, or made of the user's own address or
display name (:func:`check_password_policy`); the refusal says why and never repeats
the password.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from enum import StrEnum

from zxcvbn import zxcvbn

from videoforge.gateway.accounts.schemas import PASSWORD_MIN_LENGTH
from videoforge.infra.errors import Unauthorized, UnprocessableEntity

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")


def normalise_email(raw: str) -> str:
    """The one stored form of an e-mail address: NFKC, trimmed, lower case; 422 if odd."""
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise UnprocessableEntity(
            "That does not look like an e-mail address.", code="invalid_email"
        )
    return email


class PasswordProblem(StrEnum):
    """Why a password is refused (``details.reason`` of a ``weak_password`` error)."""

    TOO_SHORT = "too_short"
    CONTAINS_EMAIL = "contains_email"
    CONTAINS_NAME = "contains_name"
    COMMON = "common"
    GUESSABLE = "guessable"


_PROBLEM_MESSAGES = {
    PasswordProblem.TOO_SHORT: f"Choose a password of at least {PASSWORD_MIN_LENGTH} characters.",
    PasswordProblem.CONTAINS_EMAIL: (
        "Your password must not contain your e-mail address or the part before the @."
    ),
    PasswordProblem.CONTAINS_NAME: "Your password must not contain your display name.",
    PasswordProblem.COMMON: (
        "This password is too common: it is on lists of leaked passwords. Choose another."
    ),
    PasswordProblem.GUESSABLE: (
        "This password is too easy to guess: avoid single common words or names, dates, "
        "repeated characters, sequences and keyboard patterns. A few unrelated words make "
        "a strong password."
    ),
}

#: zxcvbn's score 2 means an estimated 10^6 guesses or more. Everything on its list of
#: leaked passwords (30,000, with case and l33t variants), a single common word or name,
#: a date, a repeat, a sequence or a keyboard walk scores lower.
PASSWORD_MIN_SCORE = 2
#: zxcvbn's matching grows quickly with length (its l33t substitutions most: about 0.3 s
#: for 32 characters of symbols), so it sees only the start of a long password. That can
#: only err towards refusing: a password is at least as hard to guess as any part of it.
PASSWORD_SCORED_CHARS = 24
#: E-mail local parts and display names shorter than this are not looked for inside the
#: password: "al" would refuse every password with "al" in it.
_CONTAINED_MIN_CHARS = 3


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _squash(text: str) -> str:
    """Only letters and digits: "Bob.Smith" and "bob smith" both become "bobsmith"."""
    return "".join(ch for ch in text if ch.isalnum())


def _contains(folded_password: str, needle: str) -> bool:
    needle = _fold(needle).strip()
    if len(needle) >= _CONTAINED_MIN_CHARS and needle in folded_password:
        return True
    squashed = _squash(needle)
    return len(squashed) >= _CONTAINED_MIN_CHARS and squashed in _squash(folded_password)


def password_problem(
    password: str, *, email: str | None = None, display_name: str | None = None
) -> PasswordProblem | None:
    """What is wrong with ``password`` for this user, or None when it is acceptable.

    Pure and CPU-bound (zxcvbn takes up to ~0.1 s): call it off the event loop. zxcvbn's
    own ``user_inputs`` are not used because it stores them in a module-level dictionary,
    which concurrent checks in worker threads would share; the e-mail address and the
    display name are looked for here instead.
    """
    if len(password) < PASSWORD_MIN_LENGTH or not password.strip():
        return PasswordProblem.TOO_SHORT
    folded = _fold(password)
    if email and (_contains(folded, email) or _contains(folded, email.partition("@")[0])):
        return PasswordProblem.CONTAINS_EMAIL
    if display_name and _contains(folded, display_name):
        return PasswordProblem.CONTAINS_NAME
    result = zxcvbn(password[:PASSWORD_SCORED_CHARS])
    if int(result["score"]) >= PASSWORD_MIN_SCORE:
        return None
    if any(match.get("dictionary_name") == "passwords" for match in result["sequence"]):
        return PasswordProblem.COMMON
    return PasswordProblem.GUESSABLE


async def check_password_policy(
    password: str, *, email: str | None = None, display_name: str | None = None
) -> None:
    """422 ``weak_password`` (``details.reason``: a :class:`PasswordProblem`) for a password
    that is short, common, easy to guess, or contains the e-mail address or display name.
    The message says why and never repeats the password."""
    problem = await asyncio.to_thread(
        password_problem, password, email=email, display_name=display_name
    )
    if problem is not None:
        raise UnprocessableEntity(
            _PROBLEM_MESSAGES[problem], code="weak_password", details={"reason": str(problem)}
        )


def invalid_credentials() -> Unauthorized:
    return Unauthorized("Wrong e-mail address or password.", code="invalid_credentials")
