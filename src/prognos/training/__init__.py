"""Training: networks (PyTorch), the trainer, ONNX export and evaluation.

Importing this package does not import torch; only ``networks``, ``trainer`` and ``export`` do.
"""
