"""Models: the EmoEye network, losses, balancing, datasets, training, evaluation, checkpoints.

Knows nothing of LSL or Qt.

Modules: ``network`` (EmoEyeNet, ModelConfig), ``preprocess`` (the one trial → tensor path),
``losses`` (focal loss, class weights), ``balancing`` (joint-class sampler and subset),
``dataset`` (sharded npz datasets, participant split), ``train``, ``evaluate``, ``checkpoint``
(safetensors + JSON, never pickle), ``predictor`` (inference), ``cli`` (``emoeye train`` /
``emoeye evaluate``), ``synthetic`` (planted-signal trials for tests). See docs/models.md.
"""
