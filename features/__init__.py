"""Per-trial features analysts compute by hand: skin conductance and heart (neurokit2), pupil,
gaze (I-VT fixations and saccades, areas of interest), quality, rating and prediction.

One job per module: :mod:`features.eda`, :mod:`features.cardiac`, :mod:`features.pupil`,
:mod:`features.gaze`, :mod:`features.aoi`; :mod:`features.trial` turns one
:class:`~acquisition.trials.types.Trial` (or a dataset's stored arrays of it) into a row and
:mod:`features.table` a whole recording into a table. The physiology baseline of
``emoeye evaluate`` (:mod:`models.baselines`) calls :func:`features.trial.grid_features`, so the
table and the baseline share one implementation. Nothing here downloads anything.
"""
