"""Documents of the world: layout, entities, links and QA agree with the rendered page."""

import numpy as np
import pytest

from polymodal.world import WorldDataset
from polymodal.world.documents import DOC_CLASSES, PAGE, funsd, render_document


@pytest.mark.parametrize("doc_class", DOC_CLASSES)
def test_word_boxes_inside_the_page_never_overlap_and_hold_ink(doc_class):
    for index in range(15):
        doc = render_document(0, "train", index, doc_class)
        b = doc.boxes
        assert len(doc.words) == len(b) == len(doc.line_ids) > 0
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
        assert (b[:, 2] <= PAGE[0]).all() and (b[:, 3] <= PAGE[1]).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        for i in range(len(b)):
            others = np.delete(b, i, axis=0)
            overlap_w = np.minimum(b[i, 2], others[:, 2]) - np.maximum(b[i, 0], others[:, 0])
            overlap_h = np.minimum(b[i, 3], others[:, 3]) - np.maximum(b[i, 1], others[:, 1])
            assert not ((overlap_w > 0) & (overlap_h > 0)).any(), doc.words[i]
            x0, y0, x1, y1 = b[i].astype(int)
            assert doc.image[y0:y1, x0:x1].max(axis=-1).min() < 128  # the word's box holds dark pixels
        ink = doc.image.max(axis=-1) < 128  # dark in every channel: the words' ink, not the red stamp
        covered = np.zeros_like(ink)
        for x0, y0, x1, y1 in b.astype(int):
            covered[y0:y1, x0:x1] = True
        assert not (ink & ~covered).any()  # and no ink lies outside every word box


def test_entities_links_and_qa_are_consistent():
    classes = set()
    for index in range(60):
        doc = render_document(0, "val", index)
        classes.add(doc.doc_class)
        by_id = {e.id: e for e in doc.entities}
        for e in doc.entities:
            assert e.text == " ".join(doc.words[i] for i in e.words)
            assert e.label in ("header", "question", "answer", "other")
        for q, a in doc.links:
            assert by_id[q].label == "question" and by_id[a].label == "answer"
            assert doc.line_ids[by_id[q].words[0]] == doc.line_ids[by_id[a].words[0]]
        assert {a for _, a in doc.links} == {e.id for e in doc.entities if e.label == "answer"}
        for pair in doc.qa:
            assert by_id[pair["answer_entity"]].text == pair["answer"]
        f = funsd(doc)
        assert f["doc_class"] == doc.doc_class and len(f["form"]) == len(doc.entities)
    assert classes == set(DOC_CLASSES)


def test_documents_are_deterministic_and_served_by_the_dataset():
    a, b = render_document(3, "test", 7), render_document(3, "test", 7)
    assert np.array_equal(a.image, b.image) and a.words == b.words
    item = WorldDataset("test", 8, seed=3, modalities=("document",))[7]
    assert tuple(item["document"].shape) == (3, PAGE[1], PAGE[0])
    assert np.array_equal(item["document"].numpy().transpose(1, 2, 0), a.image)
    assert item["document_labels"]["qa"] == a.qa


def test_column_layout_and_stamps():
    docs = [render_document(0, "train", i) for i in range(120)]
    columns = [d for d in docs if d.layout == "columns"]
    assert columns and {d.doc_class for d in columns} <= {"form", "id_card"}
    assert 0.3 < sum(d.stamped for d in docs) / len(docs) < 0.7
    for d in columns:
        by_id = {e.id: e for e in d.entities}
        keys = [e for e in d.entities if e.label == "question"]
        values = [e for e in d.entities if e.label == "answer"]
        # Every key's word comes before every value's: the order alone does not pair them …
        assert max(k.words[-1] for k in keys) < min((v.words[0] for v in values), default=10 ** 9)
        for q, a in d.links:  # … the geometry does: a value sits on its key's row, in a column to the right
            assert abs(by_id[q].box[3] - by_id[a].box[3]) <= 2 and by_id[a].box[0] > by_id[q].box[2]
        assert len(d.links) <= len(keys)
    stamped = next(d for d in docs if d.stamped)
    red = (stamped.image[..., 0] > 150) & (stamped.image[..., 1] < 90)
    assert red.sum() > 200
    plain = next(d for d in docs if not d.stamped)
    assert not ((plain.image[..., 0] > 150) & (plain.image[..., 1] < 90)).any()
