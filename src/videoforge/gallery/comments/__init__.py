"""Comments on videos: threads one level deep (as YouTube shows them), pinning, a
per-video policy (on / off / held for approval), instance-wide blocked words."""
