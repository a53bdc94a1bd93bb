"""Wire protocols: specifications (*.md), test vectors, and sans-I/O state machines."""
