"""Reports from users and what administrators do about them: a queue of reports grouped
by target, hiding videos, deleting comments, blocking accounts, and a log of it all."""
