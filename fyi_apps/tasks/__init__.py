"""Applications of synthetic sets: continual learning, NAS proxies, cross-architecture studies.

Each task lives in its own module (``continual``, ``nas``, ``xarch``) and is
imported explicitly; importing this package loads nothing heavy (Avalanche,
timm and matplotlib are only imported by the modules that need them).
"""
