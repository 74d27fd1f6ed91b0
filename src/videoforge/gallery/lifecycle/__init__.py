"""Lifecycle events for integrations: ``video.created``, ``video.ready``,
``video.failed``, ``video.deleted``, ``job.progress`` (and ``webhook.test``).

Every producer calls :mod:`.publisher`, which writes the event to the outbox
(``gallery_lifecycle_events``) in the producer's own transaction, so an event exists
exactly when the change that caused it was committed. :mod:`.delivery` (run once per
gallery instance) fans each event out to the owner's webhooks and to EventBridge.
"""
