"""rnnx DVC pipeline: data, model zoo, training, report."""
