"""Storage accounting: the bytes each video holds in storage, per-user totals and quotas."""
