"""Tests of the displays (Agg backend): axes, labels, images, legend."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skrelatif import (  # noqa: E402
    ExplanationGridDisplay,
    InfluenceExplainer,
    LeaveOneOutDisplay,
    NearestNeighborExplainer,
)
from skrelatif.validation import agreement  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, y_train, X_test = X[:300], y[:300], X[300:304]
    model = LogisticRegression(C=0.5, max_iter=2000).fit(X_train, y_train)
    explainers = {
        "IF": InfluenceExplainer(model, method="if").fit(X_train, y_train),
        "l-RelatIF": InfluenceExplainer(model, method="l-relatif").fit(
            X_train, y_train
        ),
        "NN": NearestNeighborExplainer(model).fit(X_train, y_train),
    }
    return X_train, y_train, X_test, model, explainers


def test_grid_from_explainers_layout_images_and_labels(digits):
    X_train, y_train, X_test, model, explainers = digits
    k = 2
    display = ExplanationGridDisplay.from_explainers(explainers, X_test, X_train, k=k)
    n_test, n_cols = len(X_test), 1 + len(explainers) * k
    assert display.axes_.shape == (n_test, n_cols)
    assert display.images_.shape == (n_test, n_cols)
    # Every cell holds exactly one image, and the figure has no other Axes.
    assert all(len(ax.images) == 1 for ax in display.axes_.ravel())
    assert len(display.figure_.axes) == n_test * n_cols
    # Column headers: "test" then one per method, over the first column of its block.
    assert display.axes_[0, 0].get_title() == "test"
    for m, name in enumerate(explainers):
        assert display.axes_[0, 1 + m * k].get_title(loc="left") == name
    predicted = model.predict(X_test)
    # Both branches of the label check below are exercised.
    assert display.mismatches_.any() and not display.mismatches_.all()
    for m, explainer in enumerate(explainers.values()):
        e = explainer.explain(X_test, k=k)
        for t in range(n_test):
            assert display.axes_[t, 0].get_xlabel() == f"label {predicted[t]}"
            np.testing.assert_array_equal(
                display.images_[t, 0].get_array(), X_test[t].reshape(8, 8)
            )
            for j in range(k):
                cell = 1 + m * k + j
                index = e.proponents[t, j]
                np.testing.assert_array_equal(
                    display.images_[t, cell].get_array(), X_train[index].reshape(8, 8)
                )
                ax = display.axes_[t, cell]
                assert ax.get_xlabel() == str(y_train[index])
                mismatch = y_train[index] != predicted[t]
                assert display.mismatches_[m, t, j] == mismatch
                red = matplotlib.colors.to_rgba("tab:red")
                assert (ax.spines["left"].get_edgecolor() == red) == mismatch
                assert (ax.xaxis.label.get_color() == "tab:red") == mismatch


def test_grid_marks_mismatched_labels():
    """A hand-made display: the frame colour follows the label comparison."""
    images = np.zeros((2, 3, 3))
    proponents = np.ones((1, 2, 2, 3, 3))
    display = ExplanationGridDisplay(
        images,
        proponents,
        test_labels=np.array(["a", "b"]),
        proponent_labels=np.array([[["a", "b"], ["a", "b"]]]),
        method_names=["m"],
    ).plot(mismatch_color="blue")
    np.testing.assert_array_equal(
        display.mismatches_[0], [[False, True], [True, False]]
    )
    blue = matplotlib.colors.to_rgba("blue")
    assert display.axes_[0, 2].spines["top"].get_edgecolor() == blue
    assert display.axes_[0, 1].spines["top"].get_edgecolor() != blue


def test_grid_from_explanation_single_and_axes_options(digits):
    X_train, _, X_test, _, explainers = digits
    e = explainers["IF"].explain(X_test, k=3)
    display = ExplanationGridDisplay.from_explanation(e, X_test, X_train)
    assert display.axes_.shape == (len(X_test), 4)
    assert display.axes_[0, 1].get_title(loc="left") == "if"  # the method's name

    # A single Axes is divided into the grid.
    fig, ax = plt.subplots()
    display = ExplanationGridDisplay.from_explanation(e, X_test, X_train, k=1, ax=ax)
    assert display.axes_.shape == (len(X_test), 2)
    assert display.figure_ is fig
    assert not ax.axison
    # An array of Axes is used as given.
    fig, axes = plt.subplots(len(X_test), 2)
    display = ExplanationGridDisplay.from_explanation(e, X_test, X_train, k=1, ax=axes)
    assert display.axes_[1, 1] is axes[1, 1]
    with pytest.raises(ValueError, match="Axes"):
        ExplanationGridDisplay.from_explanation(e, X_test, X_train, k=2, ax=axes)


def test_grid_image_shapes_and_errors(digits):
    X_train, _, X_test, _, explainers = digits
    e = explainers["NN"].explain(X_test, k=2)
    # 3-d images and an explicit image_shape give the same pictures.
    a = ExplanationGridDisplay.from_explanation(
        e, X_test.reshape(-1, 8, 8), X_train.reshape(-1, 8, 8)
    )
    b = ExplanationGridDisplay.from_explanation(e, X_test, X_train, image_shape=(4, 16))
    assert a.images_[0, 1].get_array().shape == (8, 8)
    assert b.images_[0, 1].get_array().shape == (4, 16)
    with pytest.raises(ValueError, match="not a square image"):
        ExplanationGridDisplay.from_explanation(e, X_test[:, :10], X_train[:, :10])
    with pytest.raises(ValueError, match="cannot be shown"):
        ExplanationGridDisplay.from_explanation(e, X_test, X_train, image_shape=(5, 5))
    with pytest.raises(ValueError, match="k must be between"):
        ExplanationGridDisplay.from_explanation(e, X_test, X_train, k=3)
    with pytest.raises(ValueError, match="rows"):
        ExplanationGridDisplay.from_explanation(e, X_test[:2], X_train)
    with pytest.raises(TypeError, match="Explanation"):
        ExplanationGridDisplay.from_explanation([e, "x"], X_test, X_train)


def test_leave_one_out_display_from_predictions():
    rng = np.random.RandomState(0)
    predicted = rng.normal(size=(3, 10))
    actual = predicted + 0.3 * rng.normal(size=(3, 10))
    display = LeaveOneOutDisplay.from_predictions(predicted, actual, name="exact")
    np.testing.assert_array_equal(
        display.scatter_.get_offsets(),
        np.column_stack([predicted.ravel(), actual.ravel()]),
    )
    r = agreement(predicted, actual).pearson
    assert display.agreement_.pearson == pytest.approx(r)
    texts = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert texts == [f"exact (r = {r:.3f})"]
    assert display.ax_.get_xlabel() == "Predicted test loss change"
    assert display.ax_.get_ylabel().startswith("Actual test loss change")
    np.testing.assert_allclose(display.line_.get_xdata(), display.line_.get_ydata())

    # Overlay a second series without the diagonal; the legend lists both.
    other = LeaveOneOutDisplay.from_predictions(
        predicted, -actual, name="flipped", ax=display.ax_, diagonal=False
    )
    assert other.line_ is None and other.ax_ is display.ax_
    texts = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert texts[1] == f"flipped (r = {-r:.3f})"


def test_leave_one_out_display_drops_undefined_ratios_and_checks_input():
    display = LeaveOneOutDisplay.from_predictions(
        [1.0, 2.0, 3.0, 4.0], [1.0, np.nan, 3.0, 4.5], method="theta-relatif"
    )
    assert display.agreement_.n == 3
    assert len(display.scatter_.get_offsets()) == 3
    assert "||Δθ||" in display.ax_.get_xlabel()
    with pytest.raises(ValueError, match="method"):
        LeaveOneOutDisplay.from_predictions([1.0, 2.0], [1.0, 2.0], method="nn")
    with pytest.raises(ValueError, match="same size"):
        LeaveOneOutDisplay.from_predictions([1.0, 2.0], [1.0, 2.0, 3.0])


def test_leave_one_out_display_from_explainer():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, :8])
    model = LogisticRegression(C=0.1, tol=1e-10).fit(X[:100], y[:100])
    explainer = InfluenceExplainer(model, method="if").fit(X[:100], y[:100])
    indices = np.arange(0, 100, 10)
    display = LeaveOneOutDisplay.from_explainer(explainer, X[100:103], None, indices)
    predicted = explainer.transform(X[100:103])[:, indices]
    np.testing.assert_array_equal(display.predicted, predicted)
    np.testing.assert_array_equal(
        display.actual, display.leave_one_out_.test_loss_change
    )
    assert display.agreement_.pearson > 0.99
    legend = display.ax_.get_legend().get_texts()[0].get_text()
    assert legend.startswith("if, hessian=exact (r = ")


def test_missing_matplotlib_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"skrelatif\[plot\]"):
        LeaveOneOutDisplay.from_predictions([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ImportError, match="matplotlib"):
        ExplanationGridDisplay(np.zeros((1, 2, 2)), np.zeros((1, 1, 1, 2, 2))).plot()
