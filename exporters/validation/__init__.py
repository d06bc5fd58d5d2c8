"""Checks of an export against Keras: the samples it runs on and the parity it measures."""
