"""Scores of a fitted classifier: known answers, and a class missing from the data."""

import math

import numpy as np
import pytest

from pipeline.data.imageset import ImageSet
from pipeline.evaluation.scoring import accuracy, score


class Fixed:
    """A stand-in classifier that predicts given labels, row by row."""

    def __init__(self, predicted: list[int]) -> None:
        self.predicted = np.array(predicted)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predicted[: len(x)]


def labelled(labels: list[int], classes: int) -> ImageSet:
    images = np.zeros((len(labels), 8, 8, 1), np.uint8)
    return ImageSet(images, np.array(labels, dtype=np.int64), tuple("abcd"[:classes]))


def test_known_accuracy_f1_and_recall() -> None:
    result = score(Fixed([0, 1, 1, 2]), labelled([0, 1, 2, 2], 3))
    assert result["acc"] == 0.75
    # class F1s: 1, 2/3, 2/3
    assert result["f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert result["per_class"] == [1.0, 1.0, 0.5]


def test_a_class_absent_from_the_data_is_nan_and_left_out_of_macro_f1() -> None:
    result = score(Fixed([0, 1, 0, 1]), labelled([0, 1, 0, 1], 3))
    assert result["f1"] == 1.0
    assert result["per_class"][:2] == [1.0, 1.0] and math.isnan(result["per_class"][2])


def test_accuracy_is_share_of_matches() -> None:
    assert accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == 0.75
