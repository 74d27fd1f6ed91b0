"""The gateway's side of the gallery, which it reaches only over HTTP: the client for
the few calls the gateway makes itself (:mod:`.client`) and, in distributed setups, the
proxy that streams the gallery's paths to it (:mod:`.proxy`, :mod:`.forwarding`)."""
