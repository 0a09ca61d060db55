"""A PsychoPy Coder experiment that sends EmoEye's default markers over LSL.

Shows every picture of a folder (fixation 1-2 s, picture 5 s, arousal and valence ratings on
1-7 sliders) and sends ``onset:<stimulus_id>`` on the flip that shows each picture and
``rating:arousal=<a>;valence=<v>`` after the ratings: what ``emoeye run`` reads with no
configuration. Run it with PsychoPy's Python (``pip install psychopy pylsl``)::

    python examples/psychopy_pictures.py ~/experiment/pictures --participant P01

EmoEye does not depend on PsychoPy: this file imports it only when it runs. ``emoeye present``
does the same session without PsychoPy (docs/presenter.md).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

PICTURES = (".jpg", ".jpeg", ".png", ".bmp")
DURATION = 5.0  # s, EmoEye's trial length
SCALE = (1, 7)  # EmoEye's default markers.scale


def onset_marker(stimulus_id: str) -> str:
    """The default onset marker; the id is the picture's file stem (no spaces, ';' or ',')."""
    return f"onset:{stimulus_id}"


def rating_marker(arousal: float, valence: float) -> str:
    """The default rating marker, values on the 1-7 scale."""
    return f"rating:arousal={arousal:g};valence={valence:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--participant", default="P01")
    parser.add_argument("--name", default="PsychoPyMarkers", help="LSL marker stream name")
    args = parser.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in PICTURES)
    if not files:
        raise SystemExit(f"no pictures in {args.folder}")
    random.shuffle(files)

    from psychopy import core, event, visual  # only here: EmoEye does not need PsychoPy
    from pylsl import StreamInfo, StreamOutlet

    outlet = StreamOutlet(
        StreamInfo(args.name, "Markers", 1, 0, "string", f"psychopy-{args.participant}")
    )
    win = visual.Window(fullscr=True, color="black", units="pix")
    fixation = visual.TextStim(win, text="+", height=40, color="white")
    question = visual.TextStim(win, pos=(0, 200), height=32, color="white")
    try:
        visual.TextStim(win, text="Press SPACE to start", color="white").draw()
        win.flip()
        event.waitKeys(keyList=["space"])
        for path in files:
            fixation.draw()
            win.flip()
            clock = core.Clock()
            # Load during the fixation; a new stimulus starts at the picture's pixel size.
            picture = visual.ImageStim(win, image=str(path), units="pix")
            w, h = picture.size
            k = min(win.size[0] / w, win.size[1] / h)  # letterbox: fit, keep the aspect ratio
            picture.size = (w * k, h * k)
            core.wait(max(0.0, random.uniform(1.0, 2.0) - clock.getTime()))
            picture.draw()
            # The marker goes out right after the flip that shows the picture.
            win.callOnFlip(outlet.push_sample, [onset_marker(path.stem)])
            win.flip()
            core.wait(DURATION)
            answers = []
            for text in ("How calm (1) or excited (7) do you feel?",
                         "How unpleasant (1) or pleasant (7) do you feel?"):  # fmt: skip
                slider = visual.Slider(
                    win, ticks=list(range(SCALE[0], SCALE[1] + 1)), granularity=1,
                    size=(800, 40), style="rating", labelHeight=24,
                )  # fmt: skip
                question.text = text
                while slider.getRating() is None:
                    if event.getKeys(keyList=["escape"]):
                        raise KeyboardInterrupt
                    question.draw()
                    slider.draw()
                    win.flip()
                answers.append(slider.getRating())
            outlet.push_sample([rating_marker(*answers)])
    except KeyboardInterrupt:
        pass
    finally:
        win.close()
        core.quit()


if __name__ == "__main__":
    main()
