"""How an experiment trains: ``caviar`` (the population engine) or ``book`` (the book's own
loop: batches drawn with replacement, non-inverted dropout, its batch norm); stated here, apart
from the experiments, so that the command line can offer them without importing torch."""

WAYS = ("caviar", "book")
