"""Feature engineering: labels and the fit/transform pipeline whose fitted state is plain JSON."""

from prognos.features.labels import piecewise_rul
from prognos.features.pipeline import FeaturePipeline, Windows

__all__ = ["FeaturePipeline", "Windows", "piecewise_rul"]
