"""Outgoing webhooks: users' endpoints, signed deliveries with retries, the delivery log."""
