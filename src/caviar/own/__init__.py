"""Your own model as a population: any ``nn.Module`` a builder makes from a trial's
hyperparameters, its candidates trained together in one vectorized pass (``torch.func``) where
their parameters have the same shapes, one at a time where ``vmap`` refuses the module.

The rooms above drive it as they drive :mod:`caviar.nn`'s pool: members added and removed
between rounds, one epoch each a round (:class:`caviar.nn.engine.Engine`).
"""
