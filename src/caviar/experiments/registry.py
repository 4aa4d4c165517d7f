"""Every experiment by name, in the order the lessons come (``caviar experiment list``)."""

from __future__ import annotations

from caviar.experiments import (
    batchnorm_init,
    bn_test_time,
    hparam_search,
    overfit,
    sampling,
    seed_ensemble,
    softmax,
)
from caviar.experiments.base import Experiment

BOTH = ("caviar", "book")

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "batchnorm-init",
            "batch norm rescues bad weight scales: 16 init stds, with and without BN",
            batchnorm_init.run,
            batchnorm_init.draw,
            BOTH,
        ),
        Experiment(
            "overfit",
            "a 784-[100x6]-10 net memorises 300 MNIST images: train 1.0, test about 0.75",
            overfit.run_overfit,
            overfit.draw,
            BOTH,
        ),
        Experiment(
            "weight-decay",
            "weight decay 0.1 narrows the train/test gap of the overfit net",
            overfit.run_weight_decay,
            overfit.draw,
            BOTH,
        ),
        Experiment(
            "dropout",
            "dropout 0.2, 300 epochs: inverted, the net still memorises (gap about the plain "
            "net's); --way book: the book's non-inverted trains slower",
            overfit.run_dropout,
            overfit.draw,
            BOTH,
        ),
        Experiment(
            "hparam-search",
            "the book's 100-trial random search on lr and weight decay, then coarse to fine",
            hparam_search.run,
            hparam_search.draw,
            BOTH,
        ),
        Experiment(
            "random-vs-grid",
            "25 trials on lr and Adam's eps: a grid tries 5 learning rates, random search 25",
            sampling.run_random_vs_grid,
            sampling.draw_random_vs_grid,
        ),
        Experiment(
            "log-vs-linear",
            "lr on [1e-4, 1]: linear sampling puts 90% in [0.1, 1], log 25% per decade",
            sampling.run_log_vs_linear,
            sampling.draw_log_vs_linear,
        ),
        Experiment(
            "beta-scale",
            "momentum beta on [0.9, 0.999]: linear vs 1 - 10**r, and the windows they imply",
            sampling.run_beta_scale,
            sampling.draw_beta_scale,
        ),
        Experiment(
            "bn-test-time",
            "one example at a time: batch statistics fail, running averages work",
            bn_test_time.run,
            bn_test_time.draw,
        ),
        Experiment(
            "softmax",
            "softmax regression on 2-D blobs: decision regions, probabilities, dz = yhat - y",
            softmax.run,
            softmax.draw,
        ),
        Experiment(
            "ensemble",
            "averaged softmax of 5 seeds vs each member alone, and vs dropout",
            seed_ensemble.run,
            seed_ensemble.draw,
        ),
    )
}
