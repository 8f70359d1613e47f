"""A simulated world, a reference model server and a label emitter, for the demo and tests."""
