"""The two orchestrations: deterministic generators that only decide, never do I/O."""
