"""A member's curves in an experiment, the same whichever way (caviar's or the book's)
trained it."""

from __future__ import annotations

from dataclasses import dataclass, field

from caviar.nn import MemberState


@dataclass
class Curves:
    """One member's training curve (every epoch; NaN after it diverged) and its test points
    (every few epochs)."""

    train_accuracy: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_epochs: list[int] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    diverged: bool = False
    #: the epoch whose loss was not finite (the engine froze the member there)
    diverged_epoch: int | None = None
    state: MemberState | None = None

    @property
    def divergence(self) -> str | None:
        """Where the member diverged, in words ("diverged at epoch 3"), or None."""
        if not self.diverged:
            return None
        return f"diverged at epoch {self.diverged_epoch}"

    @property
    def final_train(self) -> float:
        return self.train_accuracy[-1] if self.train_accuracy else float("nan")

    @property
    def final_test(self) -> float:
        return self.test_accuracy[-1] if self.test_accuracy else float("nan")
