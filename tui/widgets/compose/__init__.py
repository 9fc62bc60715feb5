"""Widgets of the compose screen: script editors, the parameter table, options, confirmation."""
