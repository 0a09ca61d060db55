"""The aligner must not keep cut trials (and their arrays) alive for rating attachment."""

import gc
import weakref

from test_aligner import gazepoint_chunk, make, markers

from acquisition.aligner import RatingEvent, TrialEvent


def test_cut_trials_are_not_kept_alive_but_ratings_still_attach():
    acq = make()
    acq.write(markers((10.0, "onset:coffee"), (20.0, "onset:moon")))
    acq.write(gazepoint_chunk(0, 26))
    first, second = (e.trial for e in acq.poll(now=26) if isinstance(e, TrialEvent))
    gone = weakref.ref(first)
    del first
    gc.collect()
    assert gone() is None  # released once its consumers drop it
    acq.write(markers((16.0, "rating:arousal=2;valence=3"), (26.5, "rating:arousal=6;valence=1")))
    events = [e for e in acq.poll(now=27) if isinstance(e, RatingEvent)]
    assert [(e.trial_id, e.ratings.arousal) for e in events] == [("1", 2.0), ("2", 6.0)]
    assert second.ratings.valence == 1.0  # a trial still held gets its ratings set too
