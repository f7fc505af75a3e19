"""COCO captions / instances and the shared JSON(-lines) readers: bad records named with file and
record while the rest load; sizes bounded before parsing; pictures found by id only inside their folder."""

import json

import pytest

from polymodal.data.coco import read_coco_captions, read_coco_instances
from polymodal.data.image_files import ImagesById, file_inside
from polymodal.data.records import AnnotationFormatError, jsonl_records, read_json


def test_coco_captions_and_instances_name_each_bad_record(tmp_path):
    images = [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}, {"id": 2, "file_name": "b.jpg"}]
    (tmp_path / "captions.json").write_text(json.dumps({"images": images, "annotations": [
        {"id": 1, "image_id": 1, "caption": "A  dog\non grass."}, {"id": 2, "image_id": 9, "caption": "x"},
        {"id": 3, "image_id": 1, "caption": "  "}]}))
    found, problems = read_coco_captions(tmp_path / "captions.json")
    assert [(im.id, im.captions) for im in found] == [(1, ["A dog on grass."])]
    assert any("image 1: missing width, height" in p for p in problems)
    assert any("annotation 1: image_id 9 is not in the file's images" in p for p in problems)
    assert any("annotation 2: no caption" in p for p in problems)
    (tmp_path / "instances.json").write_text(json.dumps({"images": images[:1], "categories": [{"id": 1, "name": "dog"}],
                                                         "annotations": [
        {"id": 10, "image_id": 1, "bbox": [10, 10, 20, 20], "category_id": 1},
        {"id": 11, "image_id": 1, "bbox": [90, 10, 20, 20], "category_id": 1},  # x1 = 110 > 100
        {"id": 12, "image_id": 1, "bbox": [0, 0, 5, 5], "category_id": 7},
        {"id": 13, "image_id": 1, "bbox": [0, 0, 100, 80], "category_id": 1, "iscrowd": 1}]}))
    _, objects, problems = read_coco_instances(tmp_path / "instances.json")
    assert objects[1].boxes == [[10.0, 10.0, 30.0, 30.0]] and objects[1].names == ["dog"] and objects[1].ids == [10]
    assert len(problems) == 2 and "is outside its 100 × 80 image" in problems[0] and "category_id 7" in problems[1]


def test_json_readers_bound_size_and_shape(tmp_path):
    (tmp_path / "big.json").write_text("[" + "1," * 100 + "1]")
    with pytest.raises(AnnotationFormatError, match="big.json: .* bytes is more than"):
        read_json(tmp_path / "big.json", list, max_bytes=100)
    (tmp_path / "list.json").write_text("[1, {\"a\": 1}]")
    problems = []
    assert list(jsonl_records(tmp_path / "list.json", problems)) == [(f"{tmp_path / 'list.json'}: record 1", {"a": 1})]
    assert problems == [f"{tmp_path / 'list.json'}: record 0: not a JSON object"]
    with pytest.raises(AnnotationFormatError, match="nothing.json: no such file"):
        read_json(tmp_path / "nothing.json")


def test_pictures_are_found_by_id_only_inside_their_folder(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("COCO_val2014_000000000042.jpg", "7.png", "notes.txt"):
        (tmp_path / "in" / name).write_bytes(b"x")
    (tmp_path / "secret.jpg").write_bytes(b"x")
    (tmp_path / "in" / "000000000099.jpg").symlink_to(tmp_path / "secret.jpg")
    ids = ImagesById(tmp_path / "in")
    assert ids.get(42).name == "COCO_val2014_000000000042.jpg" and ids.get("7").name == "7.png"
    assert ids.get(99) is None and ids.get(3) is None  # a link out of the folder is not a picture of it
    with pytest.raises(ValueError, match="'../secret.jpg' lies outside"):
        file_inside(tmp_path / "in", "../secret.jpg", "row 3")
    with pytest.raises(ValueError, match="row 4: 'gone.jpg' not found"):
        file_inside(tmp_path / "in", "gone.jpg", "row 4")
