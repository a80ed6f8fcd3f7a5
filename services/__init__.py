"""Service classes behind the activities: each takes its client as an argument."""
