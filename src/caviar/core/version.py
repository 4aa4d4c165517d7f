"""caviar's version: recorded with every study, shown by ``import caviar``."""

__version__ = "0.1.0"
