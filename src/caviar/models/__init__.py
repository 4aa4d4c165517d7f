"""Trained models as users hold them: a kept member ready for inference
(:class:`~caviar.models.model.CaviarModel`), an ensemble of the top kept members, export to a
plain ``torch.export`` program, loading, and the test set used once (:mod:`.evaluate`)."""
