"""Widgets of the fleet screen: the machine table and a machine's details."""
