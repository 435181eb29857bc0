"""Tests of the Explanation object: row labels, indexing, repr, plot."""

import html.parser

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
from sklearn.compose import make_column_transformer  # noqa: E402
from sklearn.datasets import load_digits, load_wine  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

from skrelatif import (  # noqa: E402
    Explanation,
    InfluenceExplainer,
    NearestNeighborExplainer,
)


@pytest.fixture(scope="module")
def wine():
    """A DataFrame split by train_test_split: shuffled, non-contiguous index."""
    X, y = load_wine(return_X_y=True, as_frame=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-10))
    model.fit(X_tr, y_tr)
    explainer = InfluenceExplainer(model).fit(X_tr, y_tr)
    return X_tr, X_te, y_tr, y_te, explainer


# -- row labels ----------------------------------------------------------------------
def test_row_labels_of_a_dataframe_after_train_test_split(wine):
    X_tr, X_te, _, _, explainer = wine
    e = explainer.explain(X_te, k=4)
    assert not (X_tr.index == np.arange(len(X_tr))).all()  # labels != positions
    # The labels index X_tr with .loc; the positions with .iloc: same rows.
    for t in range(len(e)):
        pd.testing.assert_frame_equal(
            X_tr.loc[e.proponent_labels[t]], X_tr.iloc[e.proponents[t]]
        )
        pd.testing.assert_frame_equal(
            X_tr.loc[e.opponent_labels[t]], X_tr.iloc[e.opponents[t]]
        )
    # The scores of the rows found by label, from the full score matrix.
    scores = explainer.transform(X_te)
    columns = X_tr.index.get_indexer(e.proponent_labels.ravel()).reshape(-1, 4)
    np.testing.assert_array_equal(
        np.take_along_axis(scores, columns, axis=1), e.proponent_scores
    )
    assert e.proponent_labels.shape == e.opponent_labels.shape == (len(X_te), 4)
    # to_frame: positions in train_index, labels in train_label
    frame = e.to_frame()
    np.testing.assert_array_equal(
        frame.train_label.to_numpy(), X_tr.index.to_numpy()[frame.train_index]
    )
    # The labels are the training index itself, not a copy of X or of it.
    assert e.train_row_labels is X_tr.index


def test_row_labels_of_a_pipelines_raw_input_with_strings():
    rng = np.random.RandomState(0)
    n = 60
    X = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], n),
            "size": rng.normal(size=n),
        },
        index=[f"id_{i:03d}" for i in rng.permutation(n)],
    )
    y = (X["size"] + (X["colour"] == "red") + 0.5 * rng.normal(size=n) > 0.5).astype(
        int
    )
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(), ["colour"]), (StandardScaler(), ["size"])
        ),
        LogisticRegression(tol=1e-10),
    ).fit(X, y)
    e = InfluenceExplainer(model).fit(X, y).explain(X.iloc[:3], k=2)
    expected = X.index.to_numpy()[e.proponents]
    np.testing.assert_array_equal(e.proponent_labels, expected)
    assert all(label.startswith("id_") for label in e.proponent_labels.ravel())
    assert e.to_frame().train_label.str.startswith("id_").all()


def test_row_labels_of_a_series_of_texts():
    texts = pd.Series(
        ["good film", "great film", "bad film", "awful film", "good plot"] * 6,
        index=[f"review {i}" for i in range(30)],
        name="review",
    )
    y = np.array([1, 1, 0, 0, 1] * 6)
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, y)
    e = InfluenceExplainer(model).fit(texts, y).explain(texts.iloc[:2], k=3)
    np.testing.assert_array_equal(
        e.proponent_labels, texts.index.to_numpy()[e.proponents]
    )
    assert texts.loc[e.proponent_labels[0]].tolist() == [
        texts.iloc[i] for i in e.proponents[0]
    ]


def test_no_row_labels_for_arrays_and_refits_forget_them(wine):
    X_tr, X_te, y_tr, _, _ = wine
    model = LogisticRegression(max_iter=5000).fit(X_tr.to_numpy(), y_tr)
    explainer = InfluenceExplainer(model).fit(X_tr.to_numpy(), y_tr)
    e = explainer.explain(X_te.to_numpy()[:2], k=2)
    assert e.proponent_labels is None and e.opponent_labels is None
    assert e.train_row_labels is None
    assert "train_label" not in e.to_frame()
    # fitted on a DataFrame, then on an array: the labels go
    neighbours = NearestNeighborExplainer(model).fit(X_tr, y_tr)
    e = neighbours.explain(X_te.iloc[:2], k=2)
    np.testing.assert_array_equal(
        e.proponent_labels, X_tr.index.to_numpy()[e.proponents]
    )
    neighbours.fit(X_tr.to_numpy(), y_tr)
    assert neighbours.explain(X_te.to_numpy()[:2], k=2).proponent_labels is None


# -- what made it ----------------------------------------------------------------------
def test_records_the_curvature_solver_and_damping(wine):
    _, X_te, _, y_te, explainer = wine
    e = explainer.explain(X_te.iloc[:2], k=2)
    for name in ("hessian", "solver", "damping"):
        assert getattr(e, name) == getattr(explainer, f"{name}_", None)
    assert e.target_given is False
    assert explainer.explain(X_te.iloc[:2], y_te.iloc[:2], k=2).target_given is True
    e = NearestNeighborExplainer(explainer.estimator_).fit(X_te, y_te).explain(X_te)
    assert (e.hessian, e.solver, e.damping) == (None, None, None)


# -- indexing ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, rows",
    [
        (0, [0]),
        (-1, [6]),
        (np.int64(2), [2]),
        (slice(1, 3), [1, 2]),
        (slice(None, None, -3), [6, 3, 0]),
        ([4, 0], [4, 0]),
        (np.arange(7) % 3 == 0, [0, 3, 6]),
    ],
)
def test_indexing_gives_the_explanation_of_those_test_points(wine, key, rows):
    _, X_te, _, _, explainer = wine
    X = X_te.iloc[:7]
    part = explainer.explain(X, k=3)[key]
    assert isinstance(part, Explanation)
    # the same as explaining those rows alone
    alone = explainer.explain(X.iloc[rows], k=3)
    for name in ("proponents", "opponents", "target"):
        np.testing.assert_array_equal(getattr(part, name), getattr(alone, name))
    for name in ("proponent_scores", "opponent_scores"):
        expected = getattr(alone, name)
        np.testing.assert_allclose(
            getattr(part, name),
            expected,
            rtol=1e-10,
            atol=1e-12 * np.abs(expected).max(),
        )
    np.testing.assert_array_equal(part.proponent_labels, alone.proponent_labels)
    assert len(part) == len(rows)


def test_indexing_errors_say_what_to_do(wine):
    _, X_te, _, _, explainer = wine
    e = explainer.explain(X_te.iloc[:4], k=2)
    with pytest.raises(IndexError, match="4 test points"):
        e[4]
    with pytest.raises(IndexError, match="4 test points"):
        e[-5]
    with pytest.raises(IndexError, match="4 test points"):
        e[[0, 9]]
    with pytest.raises(IndexError, match="one entry per test point"):
        e[np.array([True, False])]
    for key in ("a", 1.5, [0.5], True):
        with pytest.raises(TypeError, match="integer, a slice"):
            e[key]
    assert [len(part) for part in e] == [1, 1, 1, 1]  # iterates test points


# -- repr --------------------------------------------------------------------------
def test_repr_shows_the_first_rows_with_their_scores(wine):
    X_tr, X_te, _, _, explainer = wine
    e = explainer.explain(X_te, k=4)
    text = repr(e)
    lines = text.splitlines()
    assert lines[0].startswith("Explanation(method='l-relatif', n_test=")
    assert "proponents" in lines[1] and "opponents" in lines[1]
    assert len(lines) == 2 + 5 + 1  # summary, header, 5 rows, "... more"
    assert lines[-1] == f"... {len(X_te) - 5} more test points"
    for t in range(5):
        row = lines[2 + t]
        assert row.split()[:2] == [str(t), str(e.target[t])]
        # the three strongest of each kind, by row label, with their scores
        for labels, scores in (
            (e.proponent_labels, e.proponent_scores),
            (e.opponent_labels, e.opponent_scores),
        ):
            for j in range(3):
                assert f"{labels[t, j]} ({scores[t, j]:+.3g})" in row
        assert row.count("...") == 2  # k=4 > 3 shown per kind
    assert "more test points" not in repr(e[:5])


def test_repr_records_what_made_the_scores_and_html_is_a_table():
    e = Explanation(
        proponents=np.array([[1, 0]]),
        proponent_scores=np.array([[0.5, 0.25]]),
        opponents=np.array([[2, 0]]),
        opponent_scores=np.array([[-0.125, 0.25]]),
        target=np.array(["cat"]),
        method="if",
        train_row_labels=pd.Index(["<a>", "b&c", "d"]),
        hessian="exact",
        solver="cholesky",
        damping=0.0,
    )
    first = repr(e).splitlines()[0]
    assert first == (
        "Explanation(method='if', n_test=1, k=2, hessian='exact', "
        "solver='cholesky', damping=0.0)"
    )
    assert "b&c (+0.5), <a> (+0.25)" in repr(e)
    assert "d (-0.125), <a> (+0.25)" in repr(e)

    cells = []

    class Cells(html.parser.HTMLParser):
        def handle_data(self, data):
            cells.append(data)

    page = e._repr_html_()
    Cells().feed(page)
    assert "<a>" not in page  # escaped
    assert "b&c (+0.5), <a> (+0.25)" in cells
    assert page.count("<tr>") == 2  # header and one test point


# -- concatenate ---------------------------------------------------------------------
def test_concatenate_keeps_the_labels_and_refuses_a_mix(wine):
    _, X_te, _, y_te, explainer = wine
    a, b = explainer.explain(X_te.iloc[:2], k=2), explainer.explain(X_te.iloc[2:5], k=2)
    both = Explanation.concatenate([a, b])
    whole = explainer.explain(X_te.iloc[:5], k=2)
    np.testing.assert_array_equal(both.proponent_labels, whole.proponent_labels)
    given = explainer.explain(X_te.iloc[2:5], y_te.iloc[2:5], k=2)
    with pytest.raises(ValueError, match="not a mix"):
        Explanation.concatenate([a, given])


# -- plot ------------------------------------------------------------------------------
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skrelatif import ExplanationBarDisplay, ExplanationGridDisplay  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    model = LogisticRegression(max_iter=2000).fit(X[:200], y[:200])
    return X[:200], y[:200], X[200:203], y[200:203], model


def test_plot_of_image_data_draws_the_grid(digits):
    X_train, _, X_test, y_test, model = digits
    e = (
        InfluenceExplainer(model, method="theta-relatif")
        .fit(X_train, _)
        .explain(X_test, k=2)
    )
    display = e.plot(X_train, X_test, y_true=y_test)
    assert isinstance(display, ExplanationGridDisplay)
    assert display.headers_[1].get_text() == "theta-RelatIF"
    np.testing.assert_array_equal(
        display.images_[0, 1].get_array(), X_train[e.proponents[0, 0]].reshape(8, 8)
    )
    predicted = model.predict(X_test)
    assert display.axes_[1, 0].get_xlabel() == (
        f"predicted: {predicted[1]}\ntrue: {y_test[1]}"
    )
    # the same data as bars, and images of a non-square shape
    assert isinstance(e.plot(X_train, kind="bars"), ExplanationBarDisplay)
    display = e.plot(X_train, X_test, image_shape=(4, 16))
    assert display.images_[0, 0].get_array().shape == (4, 16)
    with pytest.raises(ValueError, match="needs the explained points"):
        e.plot(X_train)
    with pytest.raises(ValueError, match="kind must be"):
        e.plot(X_train, X_test, kind="pictures")


def test_plot_of_a_table_draws_bars_of_the_scores_with_feature_values(wine):
    X_tr, X_te, y_tr, y_te, explainer = wine
    e = explainer.explain(X_te.iloc[:2], k=3)
    display = e.plot(X_tr, X_te.iloc[:2], y_true=y_te.iloc[:2])
    assert isinstance(display, ExplanationBarDisplay)
    assert display.axes_.shape == (2,)
    for t in range(2):
        bars = display.bars_[t]
        # top bar first: proponents strongest first, then opponents, the
        # most negative last
        widths = [bar.get_width() for bar in bars]
        expected = np.r_[e.proponent_scores[t], e.opponent_scores[t][::-1]]
        np.testing.assert_array_equal(widths, expected)
        labels = [label.get_text() for label in display.axes_[t].get_yticklabels()]
        test_row = X_te.iloc[t]
        assert labels[0] == (
            f"test {t} (predicted: {e.target[t]}, true: {y_te.iloc[t]})\n"
            f"alcohol={test_row['alcohol']:.3g}, malic_acid="
            f"{test_row['malic_acid']:.3g}, ash={test_row['ash']:.3g}, ..."
        )
        rows = np.r_[e.proponent_labels[t], e.opponent_labels[t][::-1]]
        for label, row in zip(labels[1:], rows):
            values = X_tr.loc[row]
            assert label == (
                f"{row} (label {y_tr.loc[row]})\nalcohol={values['alcohol']:.3g}, "
                f"malic_acid={values['malic_acid']:.3g}, ash={values['ash']:.3g}, ..."
            )
        # bars, top to bottom, in the order of the labels
        ys = [bar.get_y() + bar.get_height() / 2 for bar in bars]
        assert np.all(np.diff(ys) > 0) and display.axes_[t].yaxis_inverted()
    assert [t.get_text() for t in display.legend_.get_texts()] == [
        "proponent",
        "opponent",
    ]
    assert display.axes_[0].get_xlabel() == "l-RelatIF score"


def test_plot_checks_that_x_train_is_the_fitted_one(wine):
    X_tr, X_te, _, _, explainer = wine
    e = explainer.explain(X_te.iloc[:1], k=2)
    with pytest.raises(ValueError, match="pass the X given to fit"):
        e.plot(X_tr.iloc[:-1])
    with pytest.raises(ValueError, match="index is not that of the X given to fit"):
        e.plot(X_tr.reset_index(drop=True))
    with pytest.raises(ValueError, match="pass the X given to explain"):
        e.plot(X_tr, X_te.iloc[:2])
