"""Widgets of the run screen: the summary, the machine table, the output panes."""
