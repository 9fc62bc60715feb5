"""Dialogs any screen can ask with: nothing here knows about fleets, runs or commands."""
