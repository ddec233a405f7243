"""Page 11's measurements: accuracy under distribution shift, per item, with paired differences.

Every protocol here trains one classifier per representation and scores it on an
in-distribution test set and on shifted ones (:func:`glocal.evaluation.shift.shift_accuracy`);
the per-item correctness it returns is the common table (:data:`ITEM_COLUMNS`), so that every
comparison of a transform with the original features is paired.

- **Text analogue** (quick, tiny; :func:`text_shift`): THINGS concepts classified into their
  categories from MiniLM features, cross-fitted over the object-disjoint folds. Within fold f,
  each category's held-out concepts are split at random (``n_repeats`` seeded splits) into
  training and test concepts. A classifier trained on the names is tested on the test concepts'
  names (in distribution: other concepts drawn from the same categories, in the same text
  form), on their "word: definition" texts and on seeded character-level corruptions of their
  names; one trained on the definitions is tested on the definitions and on the names.
- **BREEDS** (paper, smoke; :func:`breeds_shift`): trained on the source subclasses' ImageNet
  training images, tested on their validation images (in distribution) and on the target
  subclasses' validation images.
- **ImageNet-C** (paper, smoke; :func:`corruption_shift`): trained on the class-balanced
  ImageNet training subset (the contrast store), tested on a class-balanced validation subset,
  clean and under each corruption and severity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from companion.paper.comparisons import paired_summary
from companion.paper.image_features import model_config, open_store, parse_source
from companion.paper.inputs import THINGS_TASKS, Inputs
from companion.paper.tables import representations
from companion.paper.text_corruptions import corrupt_texts
from glocal import things
from glocal.errors import GlocalError
from glocal.evaluation.categories import category_labels
from glocal.evaluation.few_shot import Classifier
from glocal.evaluation.intervals import verdict
from glocal.evaluation.shift import shift_accuracy
from glocal.features.corruptions import DATASET as CORRUPTION_DATASET
from glocal.features.corruptions import corruption_split

#: The columns of the per-item table every protocol returns.
ITEM_COLUMNS = ("protocol", "task", "trained_on", "test_set", "severity", "fold", "repeat",
                "category", "item", "representation", "correct")  # fmt: skip
#: The in-distribution test set of the image protocols (its name in ``test_set``); the text
#: analogue's is the form the classifier was trained on (``trained_on``: names or definitions).
IN_DISTRIBUTION = {"breeds": "source", "corruptions": "clean"}
#: The families of shifted test sets that get one verdict each (:func:`shift_family`): sets
#: that are one shift at several severities (the typos of the names, ImageNet-C) are not
#: independent findings.
TYPOS = "typos in the names"
IMAGENET_C = "ImageNet-C corruptions"
BREEDS_TARGET = "unseen subclasses (BREEDS target)"


def in_distribution(protocol: str, trained_on: str) -> str:
    """The name of the in-distribution test set of a protocol and training form or set."""
    return trained_on if protocol == "text" else IN_DISTRIBUTION[protocol]


def shift_family(protocol: str, trained_on: str, test_set: str, severity: float) -> str:
    """The family of a shifted test set: all severities of the typos (text) or of ImageNet-C
    form one family, the other text form one (``"names → definitions"``), the BREEDS target
    subclasses one per task."""
    if protocol == "text":
        return TYPOS if severity == severity and severity > 0 else f"{trained_on} → {test_set}"
    if protocol == "corruptions":
        return IMAGENET_C
    if protocol == "breeds":
        return BREEDS_TARGET
    raise GlocalError(f"protocol {protocol!r}: expected text, corruptions or breeds")


def _with_family(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(family=[
        shift_family(p, t, s, v) for p, t, s, v in
        zip(table["protocol"], table["trained_on"], table["test_set"], table["severity"],
            strict=True)
    ])  # fmt: skip


def _rows(result: Any, **columns: Any) -> pd.DataFrame:
    items = result.per_item
    return pd.DataFrame({
        **columns, "test_set": items["test_set"].to_numpy(), "item": items["item"].to_numpy(),
        "correct": items["correct"].to_numpy(),
    })  # fmt: skip


# --- the text analogue -------------------------------------------------------------------------


def corrupted_name_features(
    kind: str, severity: float, seed: int = 0, device: str = "auto"
) -> np.ndarray:
    """MiniLM features (1854, 384) of the THINGS concept names with character-level
    corruptions (:func:`companion.paper.text_corruptions.corrupt_texts`).

    Cached in the feature store like every text source (locked, written atomically), under a
    split named by the corruption and a digest of the corrupted texts themselves.
    """
    from companion.paper.text_features import _text_store
    from glocal.features import TextSource

    concepts = things.concepts()
    texts = corrupt_texts([str(w) for w in concepts["Word"]], kind, severity, seed)
    tag = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:10]
    ids = [str(u) for u in concepts["uniqueID"]]
    split = f"{kind}-{severity:g}-{tag}"
    source = TextSource(texts, ids=ids, name="things-words-corrupted", split=split)
    return _text_store(source, device, False)


def split_concepts(
    labels: pd.Series, test_share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each category's concepts (``labels``: category by concept index) split into training
    and test concepts: ``round(test_share · n)`` test concepts per category, at least one, and
    at least one training concept."""
    train, test = [], []
    for category in sorted(labels.unique()):
        members = rng.permutation(labels.index[labels == category].to_numpy())
        k = min(max(1, int(round(test_share * len(members)))), len(members) - 1)
        test.append(members[:k])
        train.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def text_shift(
    folds: Sequence[Inputs],
    transforms: Sequence[Mapping[str, Any]],
    task: str = "things-coarse",
    n_repeats: int = 5,
    test_share: float = 0.5,
    corruptions: Sequence[str] = ("swap", "delete", "insert", "substitute"),
    severities: Sequence[float] = (0.05, 0.1, 0.2, 0.3),
    classifier: Classifier = "logreg",
    Cs: Sequence[float] | None = None,
    seed: int = 0,
    device: str = "auto",
) -> pd.DataFrame:
    """The text analogue's per-item table (see the module docstring), over all folds.

    Fold f's transforms map the features of fold f's held-out concepts (in every text form:
    the transforms were fitted on one MiniLM text form and apply to any MiniLM feature). The
    categories are ``task``'s (``things-coarse``: each concept's broadest THINGS category),
    kept when they have at least 4 held-out concepts in the fold. Split r of fold f is seeded
    by (``seed``, f, r) and is the same for every representation and test set.
    """
    from companion.paper.text_features import things_text_features
    from glocal.evaluation.few_shot import DEFAULT_CS

    if task not in THINGS_TASKS:
        raise GlocalError(f"task {task!r}: the text analogue runs {list(THINGS_TASKS)}")
    if not 0 < test_share < 1:
        raise GlocalError(f"test_share must lie in (0, 1), got {test_share}")
    forms = {"names": things_text_features("words", device),
             "definitions": things_text_features("definitions", device)}  # fmt: skip
    shifted = {(kind, float(s)): corrupted_name_features(kind, s, seed, device)
               for kind in corruptions for s in severities}  # fmt: skip
    categories = things.categories()
    frames = []
    for f, (inputs, fitted) in enumerate(zip(folds, transforms, strict=True)):
        labels = category_labels(categories, inputs.triplets.heldout, 4, THINGS_TASKS[task])
        reps = {form: representations(X, fitted) for form, X in forms.items()}
        corrupted = {key: representations(X, fitted) for key, X in shifted.items()}
        for r in range(n_repeats):
            rng = np.random.default_rng([seed, f, r])
            train, test = split_concepts(labels, test_share, rng)
            y_train, y_test = labels.loc[train].to_numpy(), labels.loc[test].to_numpy()
            for name in reps["names"]:
                for trained_on, other in (("names", "definitions"), ("definitions", "names")):
                    sets = {trained_on: (reps[trained_on][name][test], y_test),
                            other: (reps[other][name][test], y_test)}  # fmt: skip
                    severity = {trained_on: 0.0, other: float("nan")}
                    if trained_on == "names":
                        for (kind, s), rep in corrupted.items():
                            sets[f"{kind} {s:g}"] = (rep[name][test], y_test)
                            severity[f"{kind} {s:g}"] = s
                    result = shift_accuracy(
                        reps[trained_on][name][train], y_train, sets, trained_on, classifier,
                        Cs if Cs is not None else DEFAULT_CS, device=device, seed=seed + r,
                    )  # fmt: skip
                    rows = _rows(result, protocol="text", task=task, trained_on=trained_on,
                                 fold=f, repeat=r, representation=name)  # fmt: skip
                    rows["severity"] = rows["test_set"].map(severity)
                    rows["category"] = y_test[rows["item"].to_numpy()]  # the interval's unit
                    rows["item"] = test[rows["item"].to_numpy()]  # the concept's THINGS index
                    frames.append(rows)
    return pd.concat(frames, ignore_index=True).reindex(columns=list(ITEM_COLUMNS))


# --- image protocols (paper, smoke) --------------------------------------------------------------


def _store_arrays(source: str, dataset: str, split: str) -> tuple[np.ndarray, np.ndarray, list]:
    """(features, labels, ids) of a feature store of an image ``source``."""
    model, module, pretrained = parse_source(source)
    store = open_store(model_config(model, module), pretrained, dataset, split)
    return store.features(np.float32), store.labels(), store.ids()


def breeds_shift(
    inputs: Inputs,
    transforms: Mapping[str, Any],
    tasks: Sequence[str],
    classifier: Classifier = "logreg",
    Cs: Sequence[float] | None = None,
    seed: int = 0,
    device: str = "auto",
) -> pd.DataFrame:
    """BREEDS subpopulation shift's per-item table: per task (``breeds-entity13``, ...), one
    classifier per representation trained on the source subclasses' training images (store
    split ``train``), tested on their validation images (``source-val``: in distribution) and
    on the target subclasses' validation images (``test``)."""
    from glocal.evaluation.few_shot import DEFAULT_CS

    frames = []
    for task in tasks:
        X_train, y_train, _ = _store_arrays(inputs.source, task, "train")
        X_source, y_source, _ = _store_arrays(inputs.source, task, "source-val")
        X_target, y_target, _ = _store_arrays(inputs.source, task, "test")
        train = representations(X_train, transforms)
        source = representations(X_source, transforms)
        target = representations(X_target, transforms)
        for name in train:
            result = shift_accuracy(
                train[name], y_train,
                {"source": (source[name], y_source), "target": (target[name], y_target)},
                "source", classifier, Cs if Cs is not None else DEFAULT_CS, device=device,
                seed=seed,
            )  # fmt: skip
            rows = _rows(result, protocol="breeds", task=task, trained_on="source", fold=0,
                         repeat=0, representation=name)  # fmt: skip
            rows["severity"] = rows["test_set"].map({"source": 0.0, "target": float("nan")})
            frames.append(rows)
    return pd.concat(frames, ignore_index=True).reindex(columns=list(ITEM_COLUMNS))


def corruption_shift(
    inputs: Inputs,
    transforms: Mapping[str, Any],
    corruptions: Sequence[str],
    severities: Sequence[int],
    classifier: Classifier = "logreg",
    Cs: Sequence[float] | None = None,
    seed: int = 0,
    device: str = "auto",
) -> pd.DataFrame:
    """ImageNet-C's per-item table: one classifier per representation trained on the
    class-balanced ImageNet training subset (the contrast store), tested on the clean
    class-balanced validation subset (store ``imagenet-c``/``clean``) and on each corruption
    at each severity (``imagenet-c``/``CORRUPTION-SEVERITY``: the same images, corrupted)."""
    from companion.paper.image_features import CONTRAST_STORE
    from glocal.evaluation.few_shot import DEFAULT_CS

    X_train, y_train, _ = _store_arrays(inputs.source, *CONTRAST_STORE)
    X_clean, y_clean, ids = _store_arrays(inputs.source, CORRUPTION_DATASET, "clean")
    sets = {"clean": (X_clean, y_clean)}
    severity = {"clean": 0.0}
    for corruption in corruptions:
        for s in severities:
            split = corruption_split(corruption, int(s))
            X, y, these = _store_arrays(inputs.source, CORRUPTION_DATASET, split)
            if these != ids:
                raise GlocalError(
                    f"{CORRUPTION_DATASET}/{split} of {inputs.label} does not hold the clean "
                    "store's images in its order; re-extract it"
                )
            sets[split], severity[split] = (X, y), float(s)
    train = representations(X_train, transforms)
    frames = []
    for name, X in train.items():
        mapped = {k: (v[0] if name == "original" else np.asarray(transforms[name].transform(v[0])),
                      v[1]) for k, v in sets.items()}  # fmt: skip
        result = shift_accuracy(X, y_train, mapped, "clean", classifier,
                                Cs if Cs is not None else DEFAULT_CS, device=device,
                                seed=seed)  # fmt: skip
        rows = _rows(result, protocol="corruptions", task="imagenet-c", trained_on="imagenet",
                     fold=0, repeat=0, representation=name)  # fmt: skip
        rows["severity"] = rows["test_set"].map(severity)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True).reindex(columns=list(ITEM_COLUMNS))


# --- tables ------------------------------------------------------------------------------------


def _reference(test_set: pd.Series, trained_on: pd.Series, protocol: pd.Series) -> pd.Series:
    """Whether each row's test set is its protocol's in-distribution one."""
    ref = [in_distribution(p, t) for p, t in zip(protocol, trained_on, strict=True)]
    return pd.Series(test_set.to_numpy() == np.asarray(ref, dtype=object), index=test_set.index)


def unit_accuracy(items: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Accuracy per unit (fold, repeat), test set and representation (and the ``by``
    columns, e.g. ``category``), with the unit's in-distribution accuracy and the drop
    (in-distribution − this test set); ``n`` test items behind each accuracy."""
    keys = ["protocol", "task", "trained_on", "fold", "repeat", *by, "representation"]
    acc = (items.groupby([*keys, "test_set"], sort=False, dropna=False)
           .agg(accuracy=("correct", "mean"), n=("correct", "size"),
                severity=("severity", "first")).reset_index())  # fmt: skip
    is_ref = _reference(acc["test_set"], acc["trained_on"], acc["protocol"])
    ref = acc[is_ref].set_index(keys)["accuracy"].rename("reference")
    acc = acc.join(ref, on=keys)
    acc["drop"] = acc["reference"] - acc["accuracy"]
    acc["shifted"] = ~is_ref.to_numpy()
    return acc


def accuracy_table(items: pd.DataFrame) -> pd.DataFrame:
    """Mean in-distribution accuracy, shifted accuracy and drop per protocol, task, training
    form, shifted test set and representation (means over the units)."""
    acc = unit_accuracy(items)
    shifted = acc[acc["shifted"]]
    return (shifted.groupby(["protocol", "task", "trained_on", "test_set", "representation"],
                            sort=False)
            .agg(accuracy=("reference", "mean"), shifted_accuracy=("accuracy", "mean"),
                 drop=("drop", "mean"), severity=("severity", "first"),
                 units=("accuracy", "size"), items=("n", "sum"))
            .reset_index())  # fmt: skip


def _bootstrap_differences(
    items: pd.DataFrame, margin: float, n_bootstrap: int, seed: int, key: str = "test_set"
) -> pd.DataFrame:
    """Paired bootstrap over items (one train/test split): each representation minus the
    original, for the shifted accuracy and the drop, resampling the items of each test set
    (the same resamples for every representation). One row per value of ``key`` among the
    shifted test sets (``test_set``, or ``family``: the mean over the family's test sets, each
    resampled on its own)."""
    rows: list[dict[str, Any]] = []
    groups = items.groupby(["protocol", "task", "trained_on"], sort=False)
    for (protocol, task, trained_on), part in groups:
        ref_name = in_distribution(str(protocol), str(trained_on))
        wide = {ts: sub.pivot(index="item", columns="representation", values="correct")
                for ts, sub in part.groupby("test_set", sort=False)}  # fmt: skip
        rng = np.random.default_rng([seed, len(rows)])
        draws, points = {}, {}
        for ts, table in wide.items():
            n = len(table)
            weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap) / n
            draws[ts] = weights @ table.to_numpy(dtype=float)  # (B, representations)
            points[ts] = table.to_numpy(dtype=float).mean(0)
        names = list(wide[ref_name].columns)
        base = names.index("original")
        shifted = part[part["test_set"] != ref_name]
        members = shifted.groupby(key, sort=False)["test_set"].unique()
        for group, sets in members.items():
            point_acc = np.mean([points[t] for t in sets], axis=0)
            point_ref = points[ref_name]
            boot_acc = np.mean([draws[t] for t in sets], axis=0)
            for j, name in enumerate(names):
                if name == "original":
                    continue
                for measure, point, boot, sign in (
                    ("shifted accuracy", point_acc[j] - point_acc[base],
                     boot_acc[:, j] - boot_acc[:, base], "positive"),
                    ("drop", (point_ref[j] - point_acc[j]) - (point_ref[base] - point_acc[base]),
                     (draws[ref_name][:, j] - boot_acc[:, j])
                     - (draws[ref_name][:, base] - boot_acc[:, base]), "negative"),
                ):  # fmt: skip
                    low, high = np.percentile(boot, [2.5, 97.5])
                    rows.append({
                        "protocol": protocol, "task": task, "trained_on": trained_on,
                        key: group, "measure": measure, "representation": name,
                        "mean": float(point), "ci_low": float(low), "ci_high": float(high),
                        "width": float(high - low), "n": len(wide[sets[0]]), "expected": sign,
                        "verdict": verdict(float(low), float(high), sign, margin),
                    })  # fmt: skip
    return pd.DataFrame(rows)


def _category_differences(
    acc: pd.DataFrame, by: Sequence[str], margin: float
) -> list[pd.DataFrame]:
    """The shifted accuracy's and the drop's paired differences to the original features, per
    ``by`` group, with intervals over the categories (each row of ``acc`` one fold, split and
    category, weighed by its ``n`` test items; the naive transform the positive control)."""
    names = acc["representation"].unique()
    frames = []
    for measure, value, sign in (("shifted accuracy", "accuracy", "positive"),
                                 ("drop", "drop", "negative")):  # fmt: skip
        summary = paired_summary(acc, value, units=["fold", "repeat", "category"], by=by,
                                 expected={n: sign for n in names}, margin=margin,
                                 clusters=["category"], weights="n",
                                 control="naive" if "naive" in names else None)  # fmt: skip
        frames.append(summary.assign(measure=measure))
    return frames


def shift_differences(
    items: pd.DataFrame, margin: float, n_bootstrap: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Each transform minus the original features, paired, for the shifted accuracy and the
    drop, with a 95 % interval and a verdict against ``margin``.

    Where a protocol has several units (the text analogue's folds x splits) the interval is
    over the categories (every fold and split of a category together, each weighed by its
    test items: :func:`companion.paper.comparisons.paired_summary` with ``clusters``), the naive
    transform the positive control; where it has one train/test split (BREEDS, ImageNet-C)
    it is a paired percentile bootstrap over the test items (``n_bootstrap`` resamples). The
    expected sign: a higher shifted accuracy (``positive``) and a smaller drop
    (``negative``): the claim that human alignment makes a representation more robust.
    """
    frames = []
    many = items.groupby("protocol")[["fold", "repeat"]].nunique().prod(axis=1) > 1
    units = items[items["protocol"].map(many)]
    single = items[~items["protocol"].map(many)]
    if len(units):
        acc = unit_accuracy(units, by=["category"])
        frames += _category_differences(
            acc[acc["shifted"]], ["protocol", "task", "trained_on", "test_set"], margin
        )
    if len(single):
        frames.append(_bootstrap_differences(single, margin, n_bootstrap, seed))
    columns = ["protocol", "task", "trained_on", "test_set", "measure", "representation",
               "mean", "ci_low", "ci_high", "width", "n", "expected", "verdict"]  # fmt: skip
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def family_accuracy(items: pd.DataFrame) -> pd.DataFrame:
    """:func:`accuracy_table` per family of shifted test sets (:func:`shift_family`): mean
    in-distribution accuracy, mean shifted accuracy and mean drop over the family's test sets
    and the units, the number of test sets, and ``shift``: whether the original features lose
    accuracy on the family at all (a family on which they gain is easier than the
    in-distribution test set, not a shift)."""
    table = _with_family(accuracy_table(items))
    keys = ["protocol", "task", "trained_on", "family"]
    out = (table.groupby([*keys, "representation"], sort=False)
           .agg(accuracy=("accuracy", "mean"), shifted_accuracy=("shifted_accuracy", "mean"),
                drop=("drop", "mean"), test_sets=("test_set", "nunique"),
                units=("units", "max"))
           .reset_index())  # fmt: skip
    original = out[out["representation"] == "original"].set_index(keys)["drop"]
    out["shift"] = [bool(original.loc[k] > 0) for k in out[keys].itertuples(index=False)]
    return out


def family_differences(
    items: pd.DataFrame, margin: float, n_bootstrap: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """:func:`shift_differences` per family of shifted test sets (:func:`shift_family`): one
    verdict for all severities of one shift, not one per severity.

    A unit's family value is the mean over the family's test sets of its accuracy (or drop);
    with several units the interval is over the categories (as :func:`shift_differences`), with
    one split a paired bootstrap over the test items (each test set resampled on its own).
    ``shift`` says whether the original features lose accuracy on the family
    (:func:`family_accuracy`); only such families answer whether a transform is more robust.
    """
    keys = ["protocol", "task", "trained_on", "family"]
    frames = []
    many = items.groupby("protocol")[["fold", "repeat"]].nunique().prod(axis=1) > 1
    units = items[items["protocol"].map(many)]
    single = items[~items["protocol"].map(many)]
    if len(units):
        acc = _with_family(unit_accuracy(units, by=["category"]).query("shifted"))
        acc = (acc.groupby([*keys, "fold", "repeat", "category", "representation"], sort=False)
               [["accuracy", "drop", "n"]].mean().reset_index())  # fmt: skip
        frames += _category_differences(acc, keys, margin)
    if len(single):
        frames.append(_bootstrap_differences(_with_family(single), margin, n_bootstrap, seed,
                                             key="family"))  # fmt: skip
    columns = [*keys, "measure", "representation", "mean", "ci_low", "ci_high", "width", "n",
               "expected", "verdict", "shift"]  # fmt: skip
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    is_shift = family_accuracy(items).drop_duplicates(keys).set_index(keys)["shift"]
    out["shift"] = [bool(is_shift.loc[k]) for k in out[keys].itertuples(index=False)]
    return out[columns]


def _interval(row: Any) -> str:
    return f"{row.mean:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}]"


def overall_verdict(verdicts: Sequence[str]) -> str:
    """One verdict for several families: the common one; *holds* or *opposite* when only one
    of the two occurs (the others unresolved or without effect); ``mixed`` when both occur."""
    found = set(verdicts)
    if len(found) == 1:
        return next(iter(found))
    if "holds" in found and "opposite" in found:
        return "mixed"
    if "holds" in found or "opposite" in found:
        return "holds" if "holds" in found else "opposite"
    return "not resolved" if "not resolved" in found else "no effect"


def shift_answer(families: pd.DataFrame, name: str = "glocal") -> tuple[str, str]:
    """One sentence that answers "does ``name`` make the representation more robust?" from
    the drop verdicts of the families that are shifts (:func:`family_differences`), and the
    overall verdict (:func:`overall_verdict`; ``n/a`` without a shift).

    *holds*: a smaller drop than the original features; *opposite*: a larger one.
    """
    from companion.paper.plotting import label

    drops = families[(families["representation"] == name) & (families["measure"] == "drop")]
    shifts, easier = drops[drops["shift"]], drops[~drops["shift"]]
    if shifts.empty:
        return "n/a: no family of test sets on which the original features lose accuracy", "n/a"
    overall = overall_verdict(list(shifts["verdict"]))
    by = {v: ", ".join(shifts.loc[shifts["verdict"] == v, "family"]) for v in shifts["verdict"]}
    who = label(name)
    opening = {
        "holds": f"Yes: {who} loses less accuracy than the original features under "
        f"{by.get('holds')}, and more under none",
        "opposite": f"No: {who} loses more accuracy than the original features under "
        f"{by.get('opposite')}, and less under none",
        "no effect": f"No: {who} loses as much accuracy as the original features (within the "
        "margin) under every shift",
        "not resolved": f"Not resolved: {who}'s drop cannot be told from the original "
        "features' under any shift",
        "mixed": f"Mixed: {who} loses less accuracy than the original features under "
        f"{by.get('holds')} and more under {by.get('opposite')}",
    }[overall]
    parts = [f"{r.family} {_interval(r)}, {r.verdict}" for r in shifts.itertuples()]
    text = f"{opening} (its drop minus the original features' drop: {'; '.join(parts)})"
    if len(easier):
        text += (
            "; not counted: " + ", ".join(easier["family"])
            + ", easier than the in-distribution test set for the original features"
        )  # fmt: skip
    return text + ".", overall


def severity_curve(items: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy per severity (0: in distribution) and representation over the units and
    corruption kinds, for the protocols with severities (text corruptions of the names,
    ImageNet-C)."""
    acc = unit_accuracy(items)
    keep = acc["severity"].notna() & ((acc["protocol"] == "corruptions")
                                      | ((acc["protocol"] == "text")
                                         & (acc["trained_on"] == "names")))  # fmt: skip
    return (acc[keep].groupby(["protocol", "task", "severity", "representation"], sort=True)
            .agg(accuracy=("accuracy", "mean"), sd=("accuracy", "std"),
                 units=("accuracy", "size"))
            .reset_index())  # fmt: skip


def shift_claim(families: pd.DataFrame, name: str = "glocal") -> tuple[str, str]:
    """One line on whether ``name`` lowers the drop, one verdict per family of shifted test
    sets that is a shift (:func:`family_differences`), and the verdicts' summary
    (:func:`overall_verdict`, or ``n/a``)."""
    part = families[(families["representation"] == name) & (families["measure"] == "drop")
                    & families["shift"]]  # fmt: skip
    if part.empty:
        return "n/a", "n/a"
    overall = overall_verdict(list(part["verdict"]))
    text = "; ".join(f"{r.family} {_interval(r)}, {r.verdict}" for r in part.itertuples())
    return f"drop of {name} − original, per family of shifts: {text}", overall
