"""Models: the EmoEye network, losses, balancing, datasets, training, evaluation, checkpoints.

Knows nothing of LSL or Qt.

Modules: ``network`` (EmoEyeNet, ModelConfig), ``preprocess`` (the one trial → tensor path),
``losses`` (focal loss, class weights), ``balancing`` (joint-class sampler and subset),
``dataset`` (sharded npz datasets, participant split), ``train``, ``evaluate``, ``checkpoint``
(safetensors + JSON, never pickle), ``predictor`` (inference), ``cli`` (``emoeye train`` /
``emoeye evaluate``), ``synthetic`` (planted-signal trials for tests), ``backbone`` (the frozen VGG16
and its per-picture feature cache), ``weights`` (safe weight-file reading). See docs/models.md.
"""
