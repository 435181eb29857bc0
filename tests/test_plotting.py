"""Tests of the displays (Agg backend): axes, labels, images, legend."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skrelatif import (  # noqa: E402
    Explanation,
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
    # Column headers: "test" then one per method (positions: see below).
    assert [h.get_text() for h in display.headers_] == ["test", *explainers]
    predicted = model.predict(X_test)
    # Both branches of the label check below are exercised.
    assert display.mismatches_.any() and not display.mismatches_.all()
    for m, explainer in enumerate(explainers.values()):
        e = explainer.explain(X_test, k=k)
        for t in range(n_test):
            assert display.axes_[t, 0].get_xlabel() == f"predicted: {predicted[t]}"
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
                assert _framed(ax, ORANGE) == mismatch
                assert _rgba(ax.xaxis.label.get_color()) == (
                    ORANGE if mismatch else BLUE
                )


BLUE = matplotlib.colors.to_rgba("#0072B2")  # Okabe-Ito, colour-blind safe
ORANGE = matplotlib.colors.to_rgba("#E69F00")


def _rgba(color):
    return matplotlib.colors.to_rgba(color)


def _framed(ax, color):
    return all(_rgba(spine.get_edgecolor()) == color for spine in ax.spines.values())


def _extent(artist):
    return artist.get_window_extent(artist.figure.canvas.get_renderer())


@pytest.mark.parametrize("where", ["new figure", "one Axes"])
def test_grid_headers_are_centred_over_groups_separated_by_gaps(where):
    n_test, n_methods, k = 2, 3, 3
    display = ExplanationGridDisplay(
        np.zeros((n_test, 8, 8)),
        np.ones((n_methods, n_test, k, 8, 8)),
        method_names=["IF", "a rather long method name", "NN"],
    )
    if where == "new figure":
        display.plot()
    else:
        _, ax = plt.subplots(figsize=(9, 3))
        display.plot(ax=ax)
    display.figure_.canvas.draw()
    first_row = [_extent(ax) for ax in display.axes_[0]]
    groups = [[first_row[0]]] + [
        first_row[1 + m * k : 1 + (m + 1) * k] for m in range(n_methods)
    ]
    for header, group in zip(display.headers_, groups):
        left, right = group[0].x0, group[-1].x1
        text = _extent(header)
        centre = (text.x0 + text.x1) / 2
        assert left < centre < right
        assert centre == pytest.approx((left + right) / 2, abs=1.0)  # pixels
        assert text.y0 >= group[0].y1  # above the images
    # A gap between method groups, wider than the spacing inside a group.
    inside = [b.x0 - a.x1 for a, b in zip(groups[1], groups[1][1:])]
    between = [b[0].x0 - a[-1].x1 for a, b in zip(groups[1:], groups[2:])]
    assert min(between) > 2 * max(inside)


def test_grid_colours_labels_blue_when_matching_and_orange_otherwise():
    display = ExplanationGridDisplay(
        np.zeros((1, 3, 3)),
        np.ones((1, 1, 2, 3, 3)),
        test_labels=np.array([7]),
        proponent_labels=np.array([[[7, 1]]]),
    ).plot()
    match, mismatch = display.axes_[0, 1], display.axes_[0, 2]
    assert _rgba(match.xaxis.label.get_color()) == BLUE
    assert not _framed(match, ORANGE)
    assert _rgba(mismatch.xaxis.label.get_color()) == ORANGE
    assert _framed(mismatch, ORANGE)
    for ax in (match, mismatch):  # neither green nor red
        assert _rgba(ax.xaxis.label.get_color()) not in {
            _rgba("tab:green"),
            _rgba("tab:red"),
        }


def test_grid_of_a_regression_explanation_draws_values_without_colours():
    # What InfluenceExplainer.explain gives for a Ridge-like regressor: the
    # predictions explained as target, float training targets.
    rng = np.random.RandomState(0)
    X_train, X_test = rng.normal(size=(20, 4)), rng.normal(size=(2, 4))
    y_train = X_train @ [0.5, -1.0, 2.0, 0.1] + 0.01
    e = Explanation(
        proponents=np.array([[3, 5], [0, 1]]),
        proponent_scores=np.array([[0.5, 0.2], [0.4, 0.1]]),
        opponents=np.array([[7, 8], [9, 2]]),
        opponent_scores=np.array([[-0.5, -0.2], [-0.3, -0.1]]),
        target=np.array([1.23456, -0.5]),
        method="if",
        train_target=y_train,
    )
    display = ExplanationGridDisplay.from_explanation(
        e, X_test, X_train, image_shape=(2, 2)
    )
    assert not display.mismatches_.any()
    assert display.axes_[0, 0].get_xlabel() == "predicted: 1.23"
    assert display.axes_[0, 1].get_xlabel() == f"{y_train[3]:.3g}"
    for ax in display.axes_[:, 1:].ravel():
        assert _rgba(ax.xaxis.label.get_color()) not in {BLUE, ORANGE}
        assert not _framed(ax, ORANGE)


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
    assert display.headers_[1].get_text() == "IF"  # the method's name in the docs

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
    assert display.ax_.get_ylabel() == "Actual test loss change"
    np.testing.assert_allclose(display.line_.get_xdata(), display.line_.get_ydata())

    # Overlay a second series without the diagonal; the legend lists both.
    other = LeaveOneOutDisplay.from_predictions(
        predicted, -actual, name="flipped", ax=display.ax_, diagonal=False
    )
    assert other.line_ is None and other.ax_ is display.ax_
    texts = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert texts[1] == f"flipped (r = {-r:.3f})"


def test_leave_one_out_display_computes_when_built_and_draws_in_plot():
    display = LeaveOneOutDisplay([1.0, 2.0, 3.0], [1.1, 1.9, 3.2], name="x")
    # The agreement is there before anything is drawn.
    assert display.agreement_.pearson == pytest.approx(
        agreement([1.0, 2.0, 3.0], [1.1, 1.9, 3.2]).pearson
    )
    assert plt.get_fignums() == [] and not hasattr(display, "ax_")
    _, ax = plt.subplots()
    with pytest.raises(TypeError):
        display.plot(ax)  # ax is keyword-only, as in scikit-learn
    assert display.plot(ax=ax).ax_ is ax
    with pytest.raises(TypeError):
        ExplanationGridDisplay(np.zeros((1, 2, 2)), np.zeros((1, 1, 1, 2, 2))).plot(ax)


def test_leave_one_out_display_drops_undefined_ratios_and_checks_input():
    display = LeaveOneOutDisplay.from_predictions(
        [1.0, 2.0, 3.0, 4.0], [1.0, np.nan, 3.0, 4.5], method="theta-relatif"
    )
    assert display.agreement_.n == 3
    assert len(display.scatter_.get_offsets()) == 3
    assert display.ax_.get_xlabel() == "theta-RelatIF score"
    assert display.ax_.get_ylabel() == "Actual Δ test loss / ||Δθ||"
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
    assert legend.startswith("IF, hessian=exact (r = ")


@pytest.fixture(scope="module")
def ridge():
    """A ridge regression with whole-number targets (like the diabetes data)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, 4))
    y = np.round(50 * X @ [1.0, -2.0, 0.5, 0.0] + 150 + 10 * rng.normal(size=64))
    model = Ridge(alpha=1.0).fit(X[:60], y[:60])
    return X[:60], y[:60], X[60:], y[60:], model


@pytest.mark.parametrize("method", ["if", "newton"])
def test_leave_one_out_display_of_a_regressor_prediction(ridge, method):
    X, y, X_test, _, model = ridge
    explainer = InfluenceExplainer(model, method=method).fit(X, y)
    indices = np.arange(0, 60, 6)
    display = LeaveOneOutDisplay.from_explainer(explainer, X_test, None, indices)
    predicted = explainer.transform(X_test)[:, indices]
    np.testing.assert_array_equal(display.predicted, predicted)
    # y_test=None tracks minus the prediction: the actual change is its drop
    before = model.predict(X_test)
    drop = display.leave_one_out_.test_loss_change
    keep = np.delete(np.arange(60), indices[0])
    after = Ridge(alpha=1.0).fit(X[keep], y[keep]).predict(X_test)
    np.testing.assert_allclose(drop[:, 0], before - after, rtol=1e-6)
    np.testing.assert_array_equal(display.actual, drop)
    assert display.agreement_.pearson > 0.99
    if method == "newton":  # exact for squared loss
        assert display.agreement_.slope == pytest.approx(1.0, abs=1e-6)
    assert display.ax_.get_xlabel() == "Predicted drop of the prediction"
    assert display.ax_.get_ylabel().startswith("Actual drop of the prediction")


def test_leave_one_out_display_of_a_regressor_loss(ridge):
    X, y, X_test, y_test, model = ridge
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    indices = np.arange(0, 60, 6)
    display = LeaveOneOutDisplay.from_explainer(explainer, X_test, y_test, indices)
    np.testing.assert_array_equal(
        display.predicted, explainer.transform(X_test, y_test)[:, indices]
    )
    assert display.agreement_.pearson > 0.99
    assert display.ax_.get_xlabel() == "Predicted test loss change"


def test_grid_of_a_regressor_with_whole_number_targets_is_not_coloured(ridge):
    X, y, X_test, y_test, model = ridge
    explainers = {
        "IF": InfluenceExplainer(model, method="if").fit(X, y),
        "NN": NearestNeighborExplainer(model).fit(X, y),
    }
    # explaining given whole-number targets: still values, not classes
    display = ExplanationGridDisplay.from_explainers(
        explainers, X_test[:2], X, y=y_test[:2], k=2
    )
    assert not display.mismatches_.any()
    assert display.compare_labels is False
    assert display.axes_[0, 0].get_xlabel() == f"explained: {y_test[0]:.3g}"
    for ax in display.axes_[:, 1:].ravel():
        assert _rgba(ax.xaxis.label.get_color()) not in {BLUE, ORANGE}
        assert not _framed(ax, ORANGE)
    # the predictions (the default) are written as numbers too
    display = ExplanationGridDisplay.from_explainers(explainers, X_test[:2], X, k=2)
    prediction = model.predict(X_test[:1])[0]
    assert display.axes_[0, 0].get_xlabel() == f"predicted: {prediction:.3g}"
    assert not display.mismatches_.any()


def test_grid_compare_labels_overrides_the_guess():
    images = np.zeros((1, 2, 2))
    props = np.zeros((1, 1, 2, 2, 2))
    labels = dict(
        test_labels=np.array([1.0]), proponent_labels=np.array([[[1.0, 2.0]]])
    )
    guessed = ExplanationGridDisplay(images, props, **labels)
    assert guessed.mismatches_.tolist() == [[[False, True]]]
    values = ExplanationGridDisplay(images, props, compare_labels=False, **labels)
    assert not values.mismatches_.any()
    forced = ExplanationGridDisplay(
        images,
        props,
        test_labels=np.array([0.5]),
        proponent_labels=np.array([[[0.5, 1.5]]]),
        compare_labels=True,
    )
    assert forced.mismatches_.tolist() == [[[False, True]]]


def test_missing_matplotlib_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    # scikit-learn's check_matplotlib_support names the method called.
    with pytest.raises(ImportError, match="from_predictions requires matplotlib"):
        LeaveOneOutDisplay.from_predictions([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ImportError, match="plot requires matplotlib"):
        ExplanationGridDisplay(np.zeros((1, 2, 2)), np.zeros((1, 1, 1, 2, 2))).plot()


# -- the defects of issue 22, one test each ------------------------------------------
@pytest.fixture(scope="module")
def wine_relatif():
    """l-RelatIF against leave-one-out retraining on wine: the points follow
    a slope far from 1 (the score is the actual ratio only up to a constant)."""
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = LogisticRegression(C=0.5, tol=1e-10, max_iter=5000).fit(X[:150], y[:150])
    explainer = InfluenceExplainer(model, method="l-relatif").fit(X[:150], y[:150])
    return explainer, X[150:154], y[150:154], np.arange(0, 150, 15)


def test_leave_one_out_display_draws_y_equals_x_only_for_the_same_quantity(
    wine_relatif,
):
    explainer, X_test, y_test, indices = wine_relatif
    display = LeaveOneOutDisplay.from_explainer(explainer, X_test, y_test, indices)
    predicted = np.ravel(display.predicted)
    actual = np.ravel(display.actual)
    finite = np.isfinite(actual)
    slope, intercept = np.polyfit(predicted[finite], actual[finite], 1)
    assert abs(slope - 1) > 0.3  # y = x would be the wrong reference here
    x, y = display.line_.get_xdata(), display.line_.get_ydata()
    np.testing.assert_allclose(
        y, slope * np.asarray(x) + intercept, rtol=1e-8, atol=1e-10 * np.abs(y).max()
    )
    texts = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert texts[1] == f"least-squares fit (slope {slope:.2f})"
    assert texts[0].startswith("l-RelatIF, hessian=") and "(r = " in texts[0]
    assert display.ax_.get_xlabel() == "l-RelatIF score"
    # "if" and "newton" scores are the test loss change itself: y = x
    for method in ("if", "newton"):
        d = LeaveOneOutDisplay.from_predictions(
            2 * predicted, actual, method=method, ax=plt.subplots()[1]
        )
        np.testing.assert_array_equal(d.line_.get_xdata(), d.line_.get_ydata())
        assert len(d.ax_.get_legend().get_texts()) == 1
    # asked for: the diagonal anyway, or no line
    d = LeaveOneOutDisplay.from_predictions(
        predicted, actual, method="l-relatif", diagonal=True
    )
    np.testing.assert_array_equal(d.line_.get_xdata(), d.line_.get_ydata())
    d = LeaveOneOutDisplay.from_predictions(
        predicted, actual, method="l-relatif", diagonal=False
    )
    assert d.line_ is None


def _boxes(figure):
    """Rendered boxes of every Axes' x/y labels and visible tick labels."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    labels, ticks = [], []
    for ax in figure.axes:
        for label in (
            ax.xaxis.label,
            ax.yaxis.label,
            ax.xaxis.get_offset_text(),
            ax.yaxis.get_offset_text(),
        ):
            if label.get_text():
                labels.append(label.get_window_extent(renderer))
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [
                t.get_window_extent(renderer)
                for t in axis.get_ticklabels()
                if t.get_visible()
                and t.get_text()
                # ticks outside the view limits are not drawn
                and axis.get_view_interval().min() - 1e-12
                <= t.get_position()[axis is ax.yaxis]
                <= axis.get_view_interval().max() + 1e-12
            ]
            ticks.append(boxes)
    return labels, ticks


def _overlap(a, b):
    return (
        a.x0 < b.x1 - 0.5
        and b.x0 < a.x1 - 0.5
        and a.y0 < b.y1 - 0.5
        and b.y0 < a.y1 - 0.5
    )


@pytest.mark.parametrize("layout", [None, "constrained"])
@pytest.mark.parametrize("figsize, panels", [(None, 1), ((10, 4.5), 2)])
# the ranges of the scores: wine's l-RelatIF, the gallery's IF, tiny changes
@pytest.mark.parametrize("low, high", [(-0.3, 0.45), (-0.02, 0.018), (-2e-4, 1.8e-4)])
@pytest.mark.parametrize("method", ["if", "l-relatif"])
def test_leave_one_out_labels_fit_the_figure(
    layout, figsize, panels, low, high, method
):
    rng = np.random.RandomState(0)
    predicted = np.r_[low, high, rng.uniform(low, high, size=148)]
    slope = 1.0 if method == "if" else 2.7
    actual = slope * predicted + 0.01 * (high - low) * rng.normal(size=150)
    figure, axes = plt.subplots(
        1, panels, figsize=figsize, layout=layout, squeeze=False, sharey=True
    )
    for ax, other in zip(axes[0], [method, "theta-relatif"]):
        LeaveOneOutDisplay.from_predictions(
            predicted, actual, method=other, name=f"{other}, hessian=exact", ax=ax
        )
    labels, ticks = _boxes(figure)
    inside = figure.bbox
    everything = labels + [box for boxes in ticks for box in boxes]
    for box in everything:
        assert inside.x0 - 0.5 <= box.x0 and box.x1 <= inside.x1 + 0.5
        assert inside.y0 - 0.5 <= box.y0 and box.y1 <= inside.y1 + 0.5
    tick_boxes = [box for boxes in ticks for box in boxes]
    for label in labels:
        assert not any(_overlap(label, box) for box in tick_boxes)
    for i, a in enumerate(labels):
        assert not any(_overlap(a, b) for b in labels[i + 1 :])
    for boxes in ticks:  # the tick labels of one axis, a space apart
        for a, b in zip(boxes, boxes[1:]):
            assert not _overlap(a.expanded(1, 1).padded(2), b)


def test_grid_names_the_methods_as_the_docs_do(digits):
    from pathlib import Path

    X_train, y_train, X_test, model, explainers = digits
    docs = "\n".join(
        p.read_text() for p in Path(__file__).parents[1].joinpath("doc").rglob("*.rst")
    )
    methods = ["if", "theta-relatif", "l-relatif"]
    named = [InfluenceExplainer(model, method=m).fit(X_train, y_train) for m in methods]
    named.append(explainers["NN"])
    display = ExplanationGridDisplay.from_explainers(named, X_test, X_train, k=1)
    headers = [h.get_text() for h in display.headers_[1:]]
    assert headers == ["IF", "theta-RelatIF", "l-RelatIF", "nearest neighbour"]
    for name in headers:
        assert name in docs
    display = ExplanationGridDisplay.from_explanation(
        [e.explain(X_test, k=1) for e in named[:3]], X_test, X_train
    )
    assert [h.get_text() for h in display.headers_[1:]] == headers[:3]


def test_grid_has_a_colour_legend_and_says_predicted_or_true(digits):
    X_train, y_train, X_test, model, explainers = digits
    y_true = np.array([9, 9, 9, 9])
    display = ExplanationGridDisplay.from_explainers(
        {"IF": explainers["IF"]}, X_test, X_train, y_true=y_true, k=3
    )
    predicted = model.predict(X_test)
    for t in range(len(X_test)):
        assert display.axes_[t, 0].get_xlabel() == f"predicted: {predicted[t]}\ntrue: 9"
    legend = display.legend_
    assert [t.get_text() for t in legend.get_texts()] == [
        "explained label",
        "other label",
    ]
    match, mismatch = legend.legend_handles
    assert _rgba(match.get_facecolor()) == BLUE
    assert _rgba(mismatch.get_edgecolor()) == ORANGE
    # inside the figure, clear of every image and label
    display.figure_.canvas.draw()
    box = _extent(legend)
    figure = display.figure_.bbox
    assert figure.x0 <= box.x0 and box.x1 <= figure.x1 and figure.y0 <= box.y0
    for ax in display.axes_.ravel():
        assert not _overlap(box, _extent(ax))
        assert not _overlap(box, _extent(ax.xaxis.label))
    # given labels are "explained", not "predicted"
    runner_up = (predicted + 1) % 10
    display = ExplanationGridDisplay.from_explainers(
        {"IF": explainers["IF"]}, X_test, X_train, y=runner_up, k=1
    )
    assert display.axes_[0, 0].get_xlabel() == f"explained: {runner_up[0]}"
    # one Axes divided into the grid: the legend is under it
    _, ax = plt.subplots(figsize=(4, 6))
    display = ExplanationGridDisplay.from_explainers(
        {"IF": explainers["IF"]}, X_test, X_train, k=2, ax=ax
    )
    display.figure_.canvas.draw()
    box = _extent(display.legend_)
    for a in display.axes_.ravel():
        assert not _overlap(box, _extent(a)) and not _overlap(
            box, _extent(a.xaxis.label)
        )


def test_displays_draw_the_models_explained_as_sums():
    # k-neighbours: "newton" is the exact refit, so the leave-one-out display's
    # points are refits by the model's own fit, on y = x; a boosted model's
    # explanation draws as bars of its own scores.
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.neighbors import KNeighborsClassifier

    from skrelatif import ExplanationBarDisplay

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, :6])
    knn = KNeighborsClassifier(n_neighbors=7).fit(X[:150], y[:150])
    explainer = InfluenceExplainer(knn, method="newton").fit(X[:150], y[:150])
    indices = np.arange(0, 150, 5)
    display = LeaveOneOutDisplay.from_explainer(
        explainer, X[150:155], y[150:155], indices
    )
    refits = np.array(
        [
            KNeighborsClassifier(n_neighbors=7)
            .fit(np.delete(X[:150], i, 0), np.delete(y[:150], i))
            .predict_proba(X[150:155])[np.arange(5), y[150:155]]
            for i in indices
        ]
    ).T
    before = knn.predict_proba(X[150:155])[np.arange(5), y[150:155]]
    change = (
        -np.log(np.maximum(refits, np.finfo(float).eps))
        + np.log(np.maximum(before, np.finfo(float).eps))[:, None]
    )
    np.testing.assert_allclose(display.actual, change, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(display.predicted, change, rtol=1e-10, atol=1e-12)

    boosted = HistGradientBoostingClassifier(max_iter=10, random_state=0)
    boosted.fit(X[:150], y[:150])
    explanation = (
        InfluenceExplainer(boosted, method="boostin")
        .fit(X[:150], y[:150])
        .explain(X[150:152], k=3)
    )
    bars = ExplanationBarDisplay.from_explanation(explanation, X[:150])
    widths = sorted(
        round(p.get_width(), 12) for ax in np.ravel(bars.axes_) for p in ax.patches
    )
    expected = np.concatenate(
        [explanation.proponent_scores.ravel(), explanation.opponent_scores.ravel()]
    )
    np.testing.assert_allclose(widths, np.sort(np.round(expected, 12)), rtol=1e-9)
