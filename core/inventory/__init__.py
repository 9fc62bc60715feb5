"""Where machines come from: one small module per kind of inventory, each only listing.

Reaching the machines is the backends' (:mod:`core.backends`); joining the two for a
``--fleet`` value is :mod:`core.fleet`'s.
"""
