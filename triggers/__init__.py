"""The app's entry points from outside: the two queue triggers and the status API."""
