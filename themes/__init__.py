"""fleetrun's own colour themes, as data: one TOML file per theme in this folder.

``tui.themes`` loads them into Textual's theme system beside its built-in themes, with the
user's own from ``<config dir>/themes/*.toml``. ``fleetrun-dark.toml`` explains every field;
copy it there to make a theme of your own.
"""
