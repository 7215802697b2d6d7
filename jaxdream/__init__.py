"""jaxdream: pattern-carving deep dreams with a small MNIST CNN, in JAX/Flax."""
