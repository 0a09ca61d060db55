"""Models: the EmoEye network, losses, balancing, datasets, training, evaluation, checkpoints.

Knows nothing of LSL or Qt.
"""
