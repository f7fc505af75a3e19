"""Weak lines read again by a second engine: replaced only where the second reading is surer, mapped
from the crop back onto the page, strong lines never touched."""

from PIL import Image

from polymodal.documents.page import Word
from polymodal.documents.reread import reread_weak_lines


def test_weak_lines_take_the_surer_second_reading_and_strong_lines_stay():
    page = Image.new("RGB", (600, 200), "white")
    words = [Word("Index", (20, 10, 90, 30), 96, 0, 0),                       # strong: kept as it is
             Word("asni_bit_der", (20, 50, 150, 70), 40, 1, 0), Word("cece", (160, 50, 400, 70), 5, 1, 0),
             Word("asn1_copy", (20, 90, 120, 110), 45, 2, 0)]                  # weak, but the second is no surer
    crops = []

    def second(crop: Image.Image) -> list[Word]:
        crops.append(crop.size)
        # Boxes on the crop, which starts at the page's (0, 40): the weak lines padded by half their height
        # up and down and three heights left and right (clipped to the page).
        return [Word("asn1_bit_der", (20, 10, 150, 30), 99, 0, 0), Word("17", (420, 10, 440, 30), 98, 0, 0),
                Word("asnl_copy", (20, 50, 120, 70), 50, 1, 0)]

    out, replaced = reread_weak_lines(page, words, second)
    assert replaced == 1 and crops == [(460, 80)]
    assert [w.text for w in out] == ["Index", "asn1_bit_der", "17", "asn1_copy"]
    assert out[1].box == (20, 50, 150, 70) and out[2].box == (420, 50, 440, 70)  # back on the page
    assert out[1].line == out[2].line == 1 and out[1].confidence == 99 and out[3] is words[3]


def test_a_page_with_no_weak_line_is_not_read_again():
    calls = []
    words = [Word("Total", (0, 0, 10, 10), 95, 0, 0)]
    out, replaced = reread_weak_lines(Image.new("RGB", (50, 50)), words, lambda im: calls.append(im) or [])
    assert out == words and replaced == 0 and calls == []
