"""AOI files: the CSV and JSON formats, ``*`` AOIs, and one clear error per bad file."""

from __future__ import annotations

import json

import pytest

from features.aoi import AoiError, load_aois


def test_csv_and_json_give_the_same_aois(tmp_path):
    csv = tmp_path / "aoi.csv"
    csv.write_text("stimulus_id,name,x0,y0,x1,y1\npic,face,0.3,0.2,0.7,0.6\n*,face,0,0,1,1\n"
                   "*,left,0,0,0.5,1\n")  # fmt: skip
    js = tmp_path / "aoi.json"
    js.write_text(json.dumps({
        "pic": [{"name": "face", "rect": [0.3, 0.2, 0.7, 0.6]}],
        "*": [{"name": "face", "rect": [0, 0, 1, 1]}, {"name": "left", "rect": [0, 0, 0.5, 1]}],
    }))  # fmt: skip
    for path in (csv, js):
        aois = load_aois(path)
        assert aois.names == ["face", "left"]
        assert aois.columns()[:3] == ["aoi_face_dwell", "aoi_face_fixations", "aoi_face_first"]
        assert aois.of("pic")["face"].x0 == 0.3  # the picture's own AOI wins over '*'
        assert aois.of("other")["face"].x1 == 1.0 and "left" in aois.of("other")


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("stimulus_id,name,x0\npic,a,0\n", ".csv", "needs the columns"),
        ("stimulus_id,name,x0,y0,x1,y1\npic,a b,0,0,1,1\n", ".csv", "line 2: AOI name 'a b'"),
        ("stimulus_id,name,x0,y0,x1,y1\npic,a,0.5,0,0.2,1\n", ".csv", "needs x0 < x1"),
        ("stimulus_id,name,x0,y0,x1,y1\npic,a,0,0,x,1\n", ".csv", "four numbers"),
        ("stimulus_id,name,x0,y0,x1,y1\npic,a,0,0,1,1\npic,a,0,0,1,1\n", ".csv", "given twice"),
        ("{", ".json", "not valid JSON"),
        ('{"pic": [{"name": "a"}]}', ".json", "needs 'name' and 'rect'"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path, text, suffix, message):
    path = tmp_path / f"aoi{suffix}"
    path.write_text(text)
    with pytest.raises(AoiError, match=message) as info:
        load_aois(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(AoiError, match="cannot read AOI file"):
        load_aois(tmp_path / "none.csv")
