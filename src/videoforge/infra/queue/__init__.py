"""See base.py for the interface."""
