"""The simulator: a seeded generative experiment with known ground truth, and fault injection."""
