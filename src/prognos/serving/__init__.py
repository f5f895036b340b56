"""Serving: the predictor (ONNX Runtime, no torch) and the HTTP and gRPC front ends."""
