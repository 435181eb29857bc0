"""RemovalCurveDisplay and LinearDatamodelingDisplay (spec section 10): the
drawn data against independent closed-form Ridge refits, and bad input."""

import sys

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import make_regression
from sklearn.linear_model import Ridge

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skrelatif import (  # noqa: E402
    InfluenceExplainer,
    LinearDatamodelingDisplay,
    NearestNeighborExplainer,
    RemovalCurveDisplay,
)
from skrelatif.validation import (  # noqa: E402
    linear_datamodeling_score,
    removal_curve,
)

from .test_lds import _ridge_closed_form  # noqa: E402

FRACTIONS = (0.025, 0.1, 0.25)
ALPHA = 2.0


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def ridge():
    X, y = make_regression(
        n_samples=45, n_features=4, noise=5.0, random_state=0, bias=3.0
    )
    sw = np.random.default_rng(1).uniform(0.5, 2.0, size=40)
    X_train, y_train, X_test, y_test = X[:40], y[:40], X[40:], y[40:]
    model = Ridge(alpha=ALPHA).fit(X_train, y_train, sample_weight=sw)
    explainers = {
        "IF": InfluenceExplainer(model, method="if").fit(
            X_train, y_train, sample_weight=sw
        ),
        "NN": NearestNeighborExplainer(model).fit(X_train, y_train),
    }
    return X_train, y_train, sw, X_test, y_test, explainers


def _closed_form_output(X_train, y_train, sw, X_test, y_test, keep):
    """Squared test errors (or minus the predictions) of Ridge refit on ``keep``."""
    w, b = _ridge_closed_form(X_train[keep], y_train[keep], sw[keep], ALPHA)
    f = X_test @ w + b
    return -f if y_test is None else (y_test - f) ** 2


def _expected_change(ridge, y_test, ranking, sizes):
    """Mean over test points of the closed-form change without each prefix."""
    X_train, y_train, sw, X_test, _, _ = ridge
    n_train, n_test = len(X_train), len(X_test)
    full = _closed_form_output(
        X_train, y_train, sw, X_test, y_test, np.ones(n_train, bool)
    )
    change = np.empty((n_test, len(sizes)))
    for t in range(n_test):
        for j, size in enumerate(sizes):
            keep = np.ones(n_train, bool)
            keep[ranking[t][:size]] = False
            out = _closed_form_output(X_train, y_train, sw, X_test, y_test, keep)
            change[t, j] = out[t] - full[t]
    return change.mean(axis=0)


@pytest.mark.parametrize("with_y", [True, False])
def test_removal_curve_display_draws_closed_form_refits(ridge, with_y):
    X_train, y_train, sw, X_test, y_test, explainers = ridge
    y_arg = y_test if with_y else None
    display = RemovalCurveDisplay.from_explainers(
        explainers, X_test, y_arg, fractions=FRACTIONS, random_state=0
    )
    sizes = [1, 4, 10]  # max(1, round(f * 40))
    # independent rankings: the IF scores (largest first) and the distances
    scores = explainers["IF"].transform(X_test, y_arg)
    by_score = np.argsort(-scores, axis=1, kind="stable")
    distances = np.linalg.norm(X_test[:, None] - X_train[None], axis=2)
    by_distance = np.argsort(distances, axis=1, kind="stable")
    expected = {
        "IF": _expected_change(ridge, y_arg, by_score, sizes),
        "NN": _expected_change(ridge, y_arg, by_distance, sizes),
    }
    assert list(display.lines_) == ["IF", "NN"]
    for name, curve in expected.items():
        line = display.lines_[name]
        np.testing.assert_allclose(line.get_xdata(), 100 * np.asarray(FRACTIONS))
        np.testing.assert_allclose(
            line.get_ydata(), curve, rtol=1e-7, atol=1e-9 * np.abs(curve).max()
        )
        assert line.get_linestyle() == "-"
    # the random baseline: the same random sets for both, dashed
    first, second = display.results_["IF"], display.results_["NN"]
    for t in range(len(X_test)):
        for j in range(len(sizes)):
            np.testing.assert_array_equal(
                first.random_removed[t][j], second.random_removed[t][j]
            )
    random_curve = _expected_change(
        ridge, y_arg, [r[-1] for r in first.random_removed], sizes
    )
    np.testing.assert_allclose(
        display.random_line_.get_ydata(),
        random_curve,
        rtol=1e-7,
        atol=1e-9 * np.abs(random_curve).max(),
    )
    assert display.random_line_.get_linestyle() == "--"
    legend = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert legend == ["IF", "NN", "random"]
    quantity = "test loss change" if with_y else "drop of the prediction"
    assert display.ax_.get_ylabel() == f"Mean {quantity}"
    assert display.ax_.get_xlabel() == "Training examples removed (%)"
    # the proponents of a good explainer matter more than random examples
    assert display.lines_["IF"].get_ydata()[-1] > random_curve[-1]


def test_removal_curve_display_computes_when_built_and_draws_in_plot(ridge):
    display = RemovalCurveDisplay([0.01, 0.1], {"a": [[1.0, 2.0], [3.0, 6.0]]})
    assert plt.get_fignums() == [] and not hasattr(display, "ax_")
    _, ax = plt.subplots()
    with pytest.raises(TypeError):
        display.plot(ax)  # keyword-only, as in scikit-learn
    assert display.plot(ax=ax).ax_ is ax
    np.testing.assert_array_equal(display.lines_["a"].get_ydata(), [2.0, 4.0])
    assert display.random_line_ is None
    assert ax.get_xscale() == "log"  # fractions spanning a factor of 10
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "10"]


def test_removal_curve_display_from_results_and_bad_input(ridge):
    X_train, y_train, sw, X_test, y_test, explainers = ridge
    result = removal_curve(
        explainers["IF"], X_test, y_test, fractions=(0.05, 0.1), random_state=1
    )
    display = RemovalCurveDisplay.from_results({"mine": result})
    np.testing.assert_array_equal(
        display.lines_["mine"].get_ydata(), result.change.mean(axis=0)
    )
    np.testing.assert_array_equal(
        display.random_line_.get_ydata(), result.random_change.mean(axis=0)
    )
    other = removal_curve(explainers["IF"], X_test, y_test, fractions=(0.05,))
    with pytest.raises(ValueError, match="same fractions"):
        RemovalCurveDisplay.from_results({"a": result, "b": other})
    with pytest.raises(TypeError, match="removal_curve"):
        RemovalCurveDisplay.from_results({"a": {"change": 1}})
    with pytest.raises(TypeError, match="non-empty dict"):
        RemovalCurveDisplay.from_results([result])
    with pytest.raises(ValueError, match="n_fractions=2"):
        RemovalCurveDisplay([0.05, 0.1], {"a": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="finite"):
        RemovalCurveDisplay([0.05, 0.1], {"a": [1.0, np.nan]})
    with pytest.raises(TypeError, match="non-empty dict"):
        RemovalCurveDisplay([0.05], {})
    with pytest.raises(ValueError, match="include an InfluenceExplainer"):
        RemovalCurveDisplay.from_explainers({"NN": explainers["NN"]}, X_test)
    with pytest.raises(TypeError, match="not InfluenceExplainer"):
        RemovalCurveDisplay.from_explainers(
            {"IF": explainers["IF"], "x": Ridge()}, X_test
        )
    smaller = NearestNeighborExplainer(explainers["IF"].estimator_).fit(
        X_train[:30], y_train[:30]
    )
    with pytest.raises(ValueError, match="same model and training data"):
        RemovalCurveDisplay.from_explainers(
            {"IF": explainers["IF"], "NN": smaller}, X_test, fractions=(0.05,)
        )
    with pytest.raises(ValueError, match=r"fractions must lie in \(0, 1\]"):
        RemovalCurveDisplay.from_explainers(
            {"IF": explainers["IF"]}, X_test, fractions=(1.5,)
        )
    assert plt.get_fignums() == [1]  # only the first, valid display was drawn


def test_removal_curve_proponents_are_checked(ridge):
    X_train, y_train, sw, X_test, y_test, explainers = ridge
    explainer, n_test = explainers["IF"], len(X_test)
    good = np.tile(np.arange(4), (n_test, 1))
    curve = removal_curve(explainer, X_test, y_test, fractions=(0.1,), proponents=good)
    np.testing.assert_array_equal(curve.removed[0][0], np.arange(4))
    cases = {
        "shape": good[:, :3],
        "integers": good.astype(float),
        r"in \[0, 40\)": good + 37,
        "repeat": np.tile([0, 1, 1, 2], (n_test, 1)),
    }
    for message, proponents in cases.items():
        with pytest.raises(ValueError, match=message):
            removal_curve(
                explainer, X_test, y_test, fractions=(0.1,), proponents=proponents
            )


@pytest.mark.parametrize("with_y", [True, False])
def test_datamodeling_display_draws_closed_form_refits(ridge, with_y):
    X_train, y_train, sw, X_test, y_test, explainers = ridge
    y_arg = y_test if with_y else None
    rng = np.random.default_rng(3)
    subsets = rng.random((15, 40)) < 0.5
    subsets[:, 0] = True
    display = LinearDatamodelingDisplay.from_explainer(
        explainers["IF"], X_test, y_arg, test_index=2, subsets=subsets
    )
    # independent: closed-form refits, and sums of the removed examples' scores
    actual = np.array(
        [
            _closed_form_output(X_train, y_train, sw, X_test, y_arg, keep)[2]
            for keep in subsets
        ]
    )
    predicted = (~subsets).astype(float) @ explainers["IF"].transform(X_test, y_arg)[2]
    offsets = display.scatter_.get_offsets()
    np.testing.assert_allclose(
        offsets[:, 0], predicted, rtol=1e-9, atol=1e-12 * np.abs(predicted).max()
    )
    np.testing.assert_allclose(
        offsets[:, 1], actual, rtol=1e-9, atol=1e-12 * np.abs(actual).max()
    )
    rho = stats.spearmanr(predicted, actual).statistic
    assert display.spearman_ == pytest.approx(rho, abs=1e-12)
    assert display.spearman_ == pytest.approx(display.lds_.per_test[2], abs=1e-12)
    if not with_y:  # a prediction, linear in the parameters: sums track it
        assert rho > 0.5
    legend = display.ax_.get_legend().get_texts()[0].get_text()
    assert legend == f"IF (Spearman ρ = {rho:.3f})"
    assert display.test_index == 2
    ylabel = (
        "Test loss after the refit"
        if with_y
        else ("Minus the prediction after the refit")
    )
    assert display.ax_.get_ylabel() == ylabel


def test_datamodeling_display_from_result_and_bad_input(ridge):
    X_train, y_train, sw, X_test, y_test, explainers = ridge
    result = linear_datamodeling_score(
        explainers["IF"], X_test, y_test, n_subsets=8, random_state=0
    )
    display = LinearDatamodelingDisplay.from_result(result, test_index=4, name="x")
    np.testing.assert_array_equal(
        display.scatter_.get_offsets(),
        np.column_stack([result.predicted[:, 4], result.actual[:, 4]]),
    )
    _, ax = plt.subplots()
    with pytest.raises(TypeError):
        display.plot(ax)  # keyword-only
    assert display.plot(ax=ax).ax_ is ax
    for bad in (5, -1, 1.0, True):
        with pytest.raises(ValueError, match=r"test_index must be an int in \[0, 5\)"):
            LinearDatamodelingDisplay.from_result(result, test_index=bad)
    with pytest.raises(ValueError, match=r"test_index must be an int in \[0, 5\)"):
        LinearDatamodelingDisplay.from_explainer(explainers["IF"], X_test, test_index=7)
    with pytest.raises(TypeError, match="linear_datamodeling_score"):
        LinearDatamodelingDisplay.from_result({"predicted": 1})
    with pytest.raises(ValueError, match="same shape"):
        LinearDatamodelingDisplay.from_result(
            type(result)(predicted=result.predicted, actual=result.actual[:, :2])
        )
    with pytest.raises(ValueError, match="1-d arrays of the same length"):
        LinearDatamodelingDisplay(result.predicted, result.actual)
    with pytest.raises(ValueError, match="finite"):
        LinearDatamodelingDisplay([1.0, np.inf], [1.0, 2.0])
    constant = LinearDatamodelingDisplay([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    assert np.isnan(constant.spearman_)


def test_missing_matplotlib_gives_a_clear_error_before_any_refit(ridge, monkeypatch):
    X_train, y_train, sw, X_test, y_test, explainers = ridge
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="from_explainers requires matplotlib"):
        RemovalCurveDisplay.from_explainers(explainers, X_test)
    with pytest.raises(ImportError, match="from_explainer requires matplotlib"):
        LinearDatamodelingDisplay.from_explainer(explainers["IF"], X_test)
    with pytest.raises(ImportError, match="plot requires matplotlib"):
        RemovalCurveDisplay([0.1], {"a": [1.0]}).plot()
    with pytest.raises(ImportError, match="plot requires matplotlib"):
        LinearDatamodelingDisplay([1.0, 2.0], [1.0, 3.0]).plot()
