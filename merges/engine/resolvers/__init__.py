"""Deterministic conflict resolvers; the public API is in ``ladder`` (see its docstring)."""
