"""The shipped search spaces, installed with archsearch as ``archsearch.search_spaces``.

Each folder holds a ``space.toml`` and its genotypes; nothing here is code. Being a package lets a
space be named from any folder (``--space digits-wrn-16-2``), in an editable install and a wheel alike.
"""
