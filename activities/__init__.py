"""Activity functions: thin wrappers that validate their input and call one service."""
