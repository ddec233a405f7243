"""Human similarity data beyond THINGS: the SimLex-999 reader and the three image-set readers.

The image sets are the smoke world's miniatures, written in the official gLocal readers'
layouts; each reader's matrix is checked against what was written, computed independently.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat
from scipy.spatial.distance import squareform

from companion.pipeline import smoke
from glocal import data
from glocal.data import human
from glocal.errors import DataUnavailableError, GlocalError
from glocal.features import similarity_images

# --- SimLex-999 --------------------------------------------------------------------------------


def test_simlex999_registry_file_reads_999_pairs(data_dir):
    table = human.simlex999()
    assert list(table.columns) == ["word1", "word2", "similarity"]
    assert len(table) == 999
    assert table.iloc[0].tolist() == ["old", "new", 1.58]
    assert table.iloc[1].tolist() == ["smart", "intelligent", 9.2]
    assert len(set(table["word1"]) | set(table["word2"])) == 1028
    assert table["similarity"].between(0, 10).all()
    assert data.fetch("human/simlex999") == data_dir / "human" / "simlex999.txt"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "simlex.txt"
    path.write_text(text, encoding="utf-8")
    return path


HEAD = "# SimLex-999\n# Word 1\tWord 2\tHuman (mean)\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("old\tnew\t1.5\nsmart\tintelligent\n", r"line 4: 2 tab-separated fields"),
        ("old\tnew\tmuch\n", r"line 3: field 'rating' is 'much', not a number"),
        ("old\tnew\t11\n", r"line 3: field 'rating' is 11.0, outside \[0, 10\]"),
        ("old\t\t3\n", r"line 3: field 'word 2' is empty"),
        ("old\tnew\t3\nold\tnew\t4\n", r"line 4: the pair old-new repeats line 3"),
        ("", r"line 2: no word pairs"),
    ],
)
def test_a_malformed_simlex_file_names_file_line_field_and_fix(tmp_path, body, message):
    path = _write(tmp_path, HEAD + body)
    with pytest.raises(GlocalError, match=message) as err:
        human.read_simlex(path)
    assert str(path) in str(err.value)
    assert "glocal data fetch human/simlex999" in str(err.value)


def test_the_original_simlex_layout_is_read_too(tmp_path):
    path = _write(
        tmp_path,
        "word1\tword2\tPOS\tSimLex999\tconc(w1)\n"
        "old\tnew\tA\t1.58\t2.72\nsmart\tintelligent\tA\t9.2\t1.75\n",
    )
    table = human.read_simlex(path)
    assert table.values.tolist() == [["old", "new", 1.58], ["smart", "intelligent", 9.2]]


# --- the image sets ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke world's three human similarity sets, in the official layouts."""
    root = tmp_path_factory.mktemp("human")
    rng = np.random.default_rng(0)
    smoke._multi_arrangement(root / "multi-arrangement", rng)
    smoke._free_arrangement(root / "free-arrangement", rng)
    smoke._peterson(root / "peterson", rng)
    return root


def test_multi_arrangement_is_the_mean_of_the_participants_rdms(sets):
    from scipy.io import loadmat

    root = sets / "multi-arrangement"
    judgements = human.similarity_judgements("multi-arrangement", root)
    raw = loadmat(root / "sim_judgements" / "judgments_general.mat")["judgments"]
    n = smoke.SIMILARITY_IMAGES["multi-arrangement"]
    assert raw.shape == (smoke.N_PARTICIPANTS, n, n)
    rows, cols = np.triu_indices(n, 1)
    assert np.allclose(judgements.matrix[rows, cols], raw.mean(axis=0)[rows, cols])
    assert np.allclose(judgements.subjects, raw[:, rows, cols])
    assert judgements.kind == "dissimilarity"
    assert judgements.ids == tuple(f"images/image_{i:03d}.jpg" for i in range(1, n + 1))
    assert all(p.is_file() for p in judgements.images)


def test_free_arrangement_reads_pdist_ordered_distances_of_each_set(sets):
    from scipy.io import loadmat

    root = sets / "free-arrangement"
    raw = loadmat(root / "sim_judgements" / "BEHAVIOR.mat")["BEHAVIOR"]
    for stimulus_set in human.FREE_ARRANGEMENT_SETS:
        judgements = human.similarity_judgements(f"free-arrangement/{stimulus_set}", root)
        distances = raw[stimulus_set][0, 0]["pairwisedistances"][0, 0]
        assert np.allclose(judgements.matrix, squareform(distances.mean(axis=0)))
        assert np.allclose(judgements.subjects, distances)
        assert all(i.startswith(f"images/{stimulus_set}/") for i in judgements.ids)


def test_peterson_reads_the_sim_matrix_or_the_pickled_ratings(sets):
    root = sets / "peterson"
    animals = human.similarity_judgements("peterson/animals", root)
    from scipy.io import loadmat

    written = loadmat(root / "animals" / "sim_judgements" / "animals_simMatrix.mat")["simMatrix"]
    assert np.allclose(animals.matrix, written) and animals.kind == "similarity"
    assert animals.subjects is None
    fruits = human.similarity_judgements("peterson/fruits", root)
    with open(root / "fruits" / "sim_judgements" / "fruits_mturkRESULTS_all.pickle", "rb") as fh:
        ratings = pickle.load(fh)
    names = [Path(i).name for i in fruits.ids]
    for key, values in ratings.items():
        a, b = (names.index(part) for part in key.split(","))
        assert fruits.matrix[a, b] == pytest.approx(np.mean(values))
        assert fruits.matrix[b, a] == pytest.approx(np.mean(values))
    assert fruits.source.endswith("fruits_mturkRESULTS_all.pickle")


def test_family_images_are_one_store_for_every_set(sets):
    source = similarity_images("peterson", sets / "peterson")
    n = smoke.SIMILARITY_IMAGES["peterson"] * len(human.PETERSON_CATEGORIES)
    assert len(source) == n and source.name == "peterson" and source.split == "all"
    ids = set(source.ids())
    for category in human.PETERSON_CATEGORIES:
        judgements = human.similarity_judgements(f"peterson/{category}", sets / "peterson")
        assert set(judgements.ids) <= ids


def test_image_set_errors_name_the_file_the_field_and_the_fix(sets, tmp_path):
    with pytest.raises(GlocalError, match="unknown similarity set 'peterson/cars'"):
        human.similarity_judgements("peterson/cars", sets / "peterson")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GlocalError, match=r"no folder images/.*glocal data fetch human/multi"):
        human.multi_arrangement(empty)
    # a matrix that does not fit the images
    broken = tmp_path / "ma"
    (broken / "sim_judgements").mkdir(parents=True)
    (broken / "images").symlink_to(sets / "multi-arrangement" / "images")
    savemat(broken / "sim_judgements" / "judgments_general.mat", {"judgments": np.ones((2, 5, 5))})
    with pytest.raises(GlocalError, match=r"field 'judgments' has shape \(2, 5, 5\), but .* 12"):
        human.multi_arrangement(broken)
    savemat(broken / "sim_judgements" / "judgments_general.mat", {"rdms": np.ones((2, 12, 12))})
    with pytest.raises(GlocalError, match=r"no field 'judgments' \(found \['rdms'\]\)"):
        human.multi_arrangement(broken)
    (broken / "sim_judgements" / "judgments_general.mat").write_bytes(b"not a MATLAB file")
    with pytest.raises(GlocalError, match="not a MATLAB file scipy.io.loadmat reads"):
        human.multi_arrangement(broken)


def test_a_ratings_pickle_cannot_run_code(sets, tmp_path):
    import shutil

    root = tmp_path / "peterson"
    shutil.copytree(sets / "peterson" / "fruits", root / "fruits")

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    path = root / "fruits" / "sim_judgements" / "fruits_mturkRESULTS_all.pickle"
    path.write_bytes(pickle.dumps({"im01.png,im02.png": Payload()}))
    with pytest.raises(GlocalError, match="not a pickle of plain ratings .*builtins.print"):
        human.peterson(root, "fruits")


def test_missing_sets_say_where_to_put_them(no_network):
    for family, entry in human.FAMILIES.items():
        with pytest.raises(DataUnavailableError, match="lay them out as") as err:
            human.similarity_judgements(
                next(n for n in human.SIMILARITY_SETS if n.startswith(family))
            )
        assert str(no_network / entry) in str(err.value)
