"""The bundled stimulus photos (from scikit-image's samples) and the catalogue of their latent
arousal/valence used by the simulator."""
