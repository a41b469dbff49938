"""Every number the book's prose quotes from a glued value is checked (issue 9).

The pages compute their numbers in code cells and publish them with myst-nb
``glue("name", value, display=False)``; the prose quotes them as {glue:text}`name` and
says things about them ("falls by X%, from A to B", "below the training prior", "to
float32 rounding"). CLAIMS lists, page by page, every glue name the prose quotes, with
what the prose says about it (briefly quoted) and a check of that over the page's
executed glue values. Where the prose only reports a number (a timing, a size), the
check asks what a sensible measurement of it must satisfy, and the description says so.

- ``test_every_quoted_glue_name_has_a_claim`` and ``test_every_claim_is_glued_by_its_page``
  read the page sources only (no build): a new quoted number without a claim fails, and
  so does a claim about a name the page no longer glues.
- ``test_prose_claims_hold_in_built_book`` reads the executed notebooks of the session's
  cold build (``built_book``, conftest.py) and checks every claim.

Run the source-only checks with ``pytest tests/test_book_claims.py -k "not built"``.
No exact value is asserted except where the prose states an exact relation (a sum, a
ratio, a count it names).
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
from typing import Callable

import pytest

import emotion_task

from conftest import page_cells, page_source, toc_docnames
from test_book import glue_float, read_glue

pytestmark = pytest.mark.book

PAGES = toc_docnames()

#: "the 21 label words": the label count the prose states on every page.
LABEL_COUNT = 21
#: "to float32 rounding", "at most float rounding", "coincide": the largest difference
#: that float32 arithmetic on numbers of a logprob's size (|x| < ~30) can explain.
FLOAT32_ROUNDING = 1e-5
#: A timing the prose reports is a positive, finite number of seconds; an hour bounds
#: any single step or pass of these small offline runs.
SECONDS_CEILING = 3600.0


# --------------------------------------------------------------------------- #
# Reading the pages: prose, code, quoted and glued names
# --------------------------------------------------------------------------- #
#: {glue}`name`, {glue:text}`name:.3f`, ... and the directive form ```{glue:figure} name
_GLUE_QUOTE = re.compile(r"\{glue(?::\w+)?\}(?:`([^`:]+)|[ \t]+([\w.-]+))")
#: glue("name", ...) and glue(f"ch3_{split}_name", ...): the quote, then the name.
_GLUE_CALL_NAME = re.compile(r"""\bglue\(\s*(f?)(["'])(.*?)\2""")
_F_FIELD = re.compile(r"\{[^{}]*\}")


def prose_and_code(docname: str) -> tuple[str, str]:
    """A page's prose (markdown cells, or the text outside ``{code-cell}`` blocks) and code."""
    cells = page_cells(page_source(docname))
    return tuple("\n".join(c.source for c in cells if c.kind == kind) for kind in ("markdown", "code"))


def quoted_glue_names(prose: str) -> set[str]:
    """Names the prose quotes with a glue role ({glue}, {glue:text}, {glue:any}, ...)."""
    return {(role or directive).strip() for role, directive in _GLUE_QUOTE.findall(prose)}


def glued_name_patterns(code: str) -> list[re.Pattern]:
    """One pattern per glue(...) call: the literal name, or an f-string name with each
    ``{...}`` field standing for one or more word characters."""
    return [
        re.compile(r"\w+".join(map(re.escape, _F_FIELD.split(name))) if is_f else re.escape(name))
        for is_f, _, name in _GLUE_CALL_NAME.findall(code)
    ]


# --------------------------------------------------------------------------- #
# Glued values and claims
# --------------------------------------------------------------------------- #
class Glued:
    """One page's glued values as a claim reads them: ``v["name"]`` is a float,
    ``v.text("name")`` the value as text, ``v.ints("name")`` a comma-separated list.
    Remembers what each check read (``read``), to show it when the claim fails."""

    def __init__(self, texts: dict[str, str], docname: str):
        self.texts, self.docname = texts, docname
        self.read: dict[str, object] = {}

    def __getitem__(self, name: str) -> float:
        self.read[name] = value = glue_float(self.texts, name, self.docname)
        return value

    def text(self, name: str) -> str:
        if name not in self.texts:
            pytest.fail(f"glue name {name!r} not found in executed notebook {self.docname}", pytrace=False)
        raw = self.texts[name].strip()
        self.read[name] = value = str(ast.literal_eval(raw)) if raw[:1] in "'\"" else raw
        return value

    def ints(self, name: str) -> list[int]:
        return [int(part) for part in self.text(name).split(",")]


@dataclasses.dataclass(frozen=True)
class Claim:
    says: str  # what the prose says about the number, briefly quoted
    holds: Callable[[Glued], bool]

    def __and__(self, other: "Claim") -> "Claim":
        return Claim(f"{self.says}; {other.says}", lambda v: self.holds(v) and other.holds(v))


def false_claims(claims: dict[str, Claim], values: Glued) -> list[str]:
    """The claims that do not hold, each with the values its check read."""
    failures = []
    for name, claim in claims.items():
        values.read = {}
        if not claim.holds(values):
            read = ", ".join(f"{n} = {x!r}" for n, x in values.read.items())
            failures.append(f"{name}: the prose says {claim.says}\n    but {read}")
    return failures


# --------------------------------------------------------------------------- #
# What a number must be (one helper per concern)
# --------------------------------------------------------------------------- #
def is_count(x: float, low: float = 0, high: float = math.inf) -> bool:
    return float(x).is_integer() and low <= x <= high


def is_kl(x: float) -> bool:
    return math.isfinite(x) and x >= 0


def is_rounding(x: float) -> bool:
    """A largest difference that float32 rounding explains (zero allowed)."""
    return 0 <= x < FLOAT32_ROUNDING


def is_timing(x: float) -> bool:
    return math.isfinite(x) and 0 < x < SECONDS_CEILING


def about(x: float, target: float, tolerance: float = 0.1) -> bool:
    """``about 3,000``: within 10%."""
    return abs(x - target) <= tolerance * target


def percent_drop(before: float, after: float) -> float:
    return 100 * (before - after) / before


def shows_as(value: float, exact: float, decimals: int) -> bool:
    """``value`` printed with ``decimals`` decimals is ``exact`` to within half a printed unit."""
    return abs(value - exact) <= 0.5 * 10.0**-decimals + 1e-9


def count(name: str, says: str, low: float = 0, high: float = math.inf) -> Claim:
    return Claim(f"{says} (an integer in [{low}, {high}])", lambda v: is_count(v[name], low, high))


def timing(name: str, says: str) -> Claim:
    return Claim(
        f"{says} (a timing the prose only reports: positive, finite seconds, under an hour)",
        lambda v: is_timing(v[name]),
    )


def rounding(name: str, says: str) -> Claim:
    return Claim(f"{says} (0 <= difference < {FLOAT32_ROUNDING:g})", lambda v: is_rounding(v[name]))


def learning_rate(name: str) -> Claim:
    return Claim("'learning rate X' (a positive step size below 1)", lambda v: 0 < v[name] < 1)


def falls(before: str, after: str, says: str) -> Claim:
    return Claim(f"{says} (0 <= after < before)", lambda v: 0 <= v[after] < v[before])


# --------------------------------------------------------------------------- #
# Chapter 1: target shapes
# --------------------------------------------------------------------------- #
_CH1_MISMATCH = Claim(
    "'{ch1_K} target rows against {ch1_T} input tokens' (the rejected mismatch: K = 21 != T)",
    lambda v: v["ch1_K"] == LABEL_COUNT and is_count(v["ch1_T"], 1) and v["ch1_T"] != v["ch1_K"],
)
_CH1_WEIGHTS_MATTER = Claim(
    "'with weight 1 everywhere the loss would be {every} instead of {set}, almost all of it from "
    "positions that are not the answer' (0 < set loss, and the set loss < 10% of the all-ones loss)",
    lambda v: 0 < v["ch1_set_loss"] < 0.1 * v["ch1_every_entry_loss"],
)

CH1 = {
    "ch1_T": _CH1_MISMATCH,
    "ch1_K": _CH1_MISMATCH,
    "ch1_T_minus_1": Claim(
        "'row `T-1` = {ch1_T_minus_1} is the answer position' (it is T - 1)",
        lambda v: v["ch1_T_minus_1"] == v["ch1_T"] - 1,
    ),
    "ch1_answer_logprob": Claim(
        "'Its log-probability, {ch1_answer_logprob}' (a log-probability: finite and <= 0)",
        lambda v: -math.inf < v["ch1_answer_logprob"] <= 0,
    ),
    "ch1_every_entry_loss": _CH1_WEIGHTS_MATTER,
    "ch1_set_loss": _CH1_WEIGHTS_MATTER,
    "ch1_vocab_size": Claim(
        "'It never saw the {ch1_vocab_size}-wide next-token distribution' (a vocabulary wider than K)",
        lambda v: is_count(v["ch1_vocab_size"], v["ch1_K"] + 1),
    ),
}


# --------------------------------------------------------------------------- #
# Chapter 2: gather, renormalize, KL
# --------------------------------------------------------------------------- #
def _ch2_raw_splits() -> Claim:
    return Claim(
        "'the raw version is {raw}, and {neg_log_mass} of it is the mass term'; 'the raw "
        "cross-entropy adds -log(mass) to' the KL (raw = KL + (-log mass) to the 4 printed "
        "decimals, -log mass > 0)",
        lambda v: 0 < v["ch2_neg_log_mass"] <= v["ch2_raw_loss"]
        and abs(v["ch2_raw_loss"] - v["ch2_kl"] - v["ch2_neg_log_mass"]) <= 1.5e-4,
    )


_CH2_MASS_RANGE = Claim(
    "'the mass on the set ranges from {min} to {max} (mean {mean})' (0 < min <= mean <= max < 1)",
    lambda v: 0 < v["ch2_min_mass"] <= v["ch2_mean_mass"] <= v["ch2_max_mass"] < 1,
)

CH2 = {
    "ch2_K": count("ch2_K", "'each of the {ch2_K} labels', the 21 labels", LABEL_COUNT, LABEL_COUNT),
    "ch2_T": Claim(
        "'target_tokens of shape [T, K] = [{ch2_T}, {ch2_K}]' (T a positive count)",
        lambda v: is_count(v["ch2_T"], 2),
    ),
    "ch2_kl": Claim("'the first example's KL over the set is {ch2_kl}' (a KL: finite, >= 0)",
                    lambda v: is_kl(v["ch2_kl"])) & _ch2_raw_splits(),
    "ch2_mass_on_set": Claim(
        "'the model puts only {ch2_mass_on_set} of its probability on the 21 labels' (0 < mass < 1/2, "
        "within the training examples' range, and -log of it is the mass term to the printed decimals)",
        lambda v: 0 < v["ch2_mass_on_set"] < 0.5
        and v["ch2_min_mass"] <= v["ch2_mass_on_set"] <= v["ch2_max_mass"]
        and shows_as(v["ch2_mass_on_set"], math.exp(-v["ch2_neg_log_mass"]), 4),
    ),
    "ch2_min_mass": _CH2_MASS_RANGE,
    "ch2_max_mass": _CH2_MASS_RANGE,
    "ch2_mean_mass": _CH2_MASS_RANGE,
    "ch2_mean_kl": Claim("'the mean KL over the set is {ch2_mean_kl}' (a KL: finite, >= 0)",
                         lambda v: is_kl(v["ch2_mean_kl"])),
    "ch2_raw_loss": _ch2_raw_splits(),
    "ch2_neg_log_mass": _ch2_raw_splits(),
}


# --------------------------------------------------------------------------- #
# Chapter 3: training
# --------------------------------------------------------------------------- #
#: "Both numbers are means over eight sentences": each evaluation split has 8.
EVAL_SENTENCES = 8
#: "Of the 16 samples from each model"
SAMPLES = 16


def _ch3_falls_by(split: str) -> Claim:
    before, after, drop = (f"ch3_{split}_kl_{k}" for k in ("before", "after", "drop_percent"))
    return Claim(
        f"'the {split} KL falls by X%, from A to B' (0 <= B < A, and X printed with no decimals is "
        f"100 (A - B) / A)",
        lambda v: 0 <= v[after] < v[before] and shows_as(v[drop], percent_drop(v[before], v[after]), 0),
    )


def _ch3_mass_rises(split: str) -> Claim:
    before, after = f"ch3_{split}_mass_before", f"ch3_{split}_mass_after"
    return Claim(
        f"'the mean mass on the set goes from A to B' on {split}: 'It rose, but most of the next-token "
        "probability is still on tokens that are not labels' (0 < A < B < 1/2)",
        lambda v: 0 < v[before] < v[after] < 0.5,
    )


_CH3_HELDOUT_ENDS_BELOW_BASELINES = Claim(
    "'The KL ends at {after} ... below the training prior ({prior}) and the uniform guess ({uniform})'",
    lambda v: v["ch3_heldout_kl_after"] < v["ch3_heldout_prior_kl"] < v["ch3_heldout_uniform_kl"],
)
_CH3_BASE_MODEL_IS_POOR = Claim(
    "the base model's held-out KL is 'only a little better than the uniform guess (U), and worse "
    "than the training prior (P)' (P < before < U, and before within 15% of U)",
    lambda v: v["ch3_heldout_prior_kl"] < v["ch3_heldout_kl_before"] < v["ch3_heldout_uniform_kl"]
    and v["ch3_heldout_kl_before"] >= 0.85 * v["ch3_heldout_uniform_kl"],
)
_CH3_PARAPHRASES_BELOW_PRIOR = Claim(
    "the paraphrases' KL ends 'well below the training prior's {prior}' (at most 90% of it)",
    lambda v: v["ch3_paraphrases_kl_after"] <= 0.9 * v["ch3_paraphrases_prior_kl"],
)
_CH3_PARAPHRASE_TARGETS = Claim(
    f"'{{identical}} of the {EVAL_SENTENCES} targets are identical to their source's ({{close}} more "
    "are within KL 0.015)' (two counts that add up to at most 8)",
    lambda v: is_count(v["ch3_para_identical_targets"])
    and is_count(v["ch3_para_close_targets"])
    and v["ch3_para_identical_targets"] + v["ch3_para_close_targets"] <= EVAL_SENTENCES,
)
_CH3_NEW_01_WORSE = Claim(
    "new-01 'ends far *worse* than it started (A to B)'; 'This one sentence accounts for much of "
    "the held-out mean' (B >= 1.5 A, and B is at least a quarter of the 8 sentences' summed KL)",
    lambda v: v["ch3_kl_new_01_after"] >= 1.5 * v["ch3_kl_new_01_before"] > 0
    and v["ch3_kl_new_01_after"] >= 0.25 * EVAL_SENTENCES * v["ch3_heldout_kl_after"],
)
_CH3_NEW_04_CLOSE_THEN_SHARPER = Claim(
    "new-04 'was already close before training (A) and ends at B, as the model sharpens onto "
    "nostalgia' (A under half the held-out mean before training; B > A: sharpening moved it away)",
    lambda v: 0 <= v["ch3_kl_new_04_before"] < 0.5 * v["ch3_heldout_kl_before"]
    and v["ch3_kl_new_04_after"] > v["ch3_kl_new_04_before"],
)
_CH3_PARA_04_CLOSE = Claim(
    "para-04 'moves close to its target (KL A to B)' (B < A / 2)",
    lambda v: 0 <= v["ch3_kl_para_04_after"] < 0.5 * v["ch3_kl_para_04_before"],
)
_CH3_PARA_01_IMPROVES = falls("ch3_kl_para_01_before", "ch3_kl_para_01_after", "para-01 'improves (A to B)'")


def _ch3_top_label(name: str) -> Claim:
    return count(name, "'the top label matches the target's on N of 8' sentences", 0, EVAL_SENTENCES)


def _ch3_sampled(name: str) -> Claim:
    return count(
        name,
        f"'Of the {SAMPLES} samples from each model, N start with a label token'; 'a sample is rarely a "
        "label' (at most a quarter)",
        0,
        SAMPLES / 4,
    )


CH3 = {
    "ch3_train_kl_before": _ch3_falls_by("train"),
    "ch3_train_kl_after": _ch3_falls_by("train"),
    "ch3_train_kl_drop_percent": _ch3_falls_by("train"),
    "ch3_paraphrases_kl_before": _ch3_falls_by("paraphrases"),
    "ch3_paraphrases_kl_drop_percent": _ch3_falls_by("paraphrases"),
    "ch3_paraphrases_kl_after": _ch3_falls_by("paraphrases") & _CH3_PARAPHRASES_BELOW_PRIOR,
    "ch3_paraphrases_prior_kl": _CH3_PARAPHRASES_BELOW_PRIOR,
    "ch3_heldout_kl_before": _ch3_falls_by("heldout") & _CH3_BASE_MODEL_IS_POOR,
    "ch3_heldout_kl_after": _ch3_falls_by("heldout") & _CH3_HELDOUT_ENDS_BELOW_BASELINES,
    "ch3_heldout_kl_drop_percent": _ch3_falls_by("heldout"),
    "ch3_heldout_prior_kl": _CH3_BASE_MODEL_IS_POOR & _CH3_HELDOUT_ENDS_BELOW_BASELINES,
    "ch3_heldout_uniform_kl": _CH3_BASE_MODEL_IS_POOR & _CH3_HELDOUT_ENDS_BELOW_BASELINES,
    "ch3_train_mass_before": _ch3_mass_rises("train"),
    "ch3_train_mass_after": _ch3_mass_rises("train"),
    "ch3_paraphrases_mass_before": _ch3_mass_rises("paraphrases"),
    "ch3_paraphrases_mass_after": _ch3_mass_rises("paraphrases"),
    "ch3_heldout_mass_before": _ch3_mass_rises("heldout"),
    "ch3_heldout_mass_after": _ch3_mass_rises("heldout"),
    "ch3_para_identical_targets": _CH3_PARAPHRASE_TARGETS,
    "ch3_para_close_targets": _CH3_PARAPHRASE_TARGETS,
    "ch3_paraphrases_top_label_right_before": _ch3_top_label("ch3_paraphrases_top_label_right_before"),
    "ch3_paraphrases_top_label_right_after": _ch3_top_label("ch3_paraphrases_top_label_right_after"),
    "ch3_heldout_top_label_right_before": _ch3_top_label("ch3_heldout_top_label_right_before"),
    "ch3_heldout_top_label_right_after": _ch3_top_label("ch3_heldout_top_label_right_after"),
    "ch3_kl_para_04_before": _CH3_PARA_04_CLOSE,
    "ch3_kl_para_04_after": _CH3_PARA_04_CLOSE,
    "ch3_kl_new_04_before": _CH3_NEW_04_CLOSE_THEN_SHARPER,
    "ch3_kl_new_04_after": _CH3_NEW_04_CLOSE_THEN_SHARPER,
    "ch3_kl_para_01_before": _CH3_PARA_01_IMPROVES,
    "ch3_kl_para_01_after": _CH3_PARA_01_IMPROVES,
    "ch3_kl_new_01_before": _CH3_NEW_01_WORSE,
    "ch3_kl_new_01_after": _CH3_NEW_01_WORSE,
    "ch3_sampled_labels_before": _ch3_sampled("ch3_sampled_labels_before"),
    "ch3_sampled_labels_after": _ch3_sampled("ch3_sampled_labels_after"),
    "ch3_num_steps": count("ch3_num_steps", "'Over {ch3_num_steps} steps'", 1),
    "ch3_learning_rate": learning_rate("ch3_learning_rate"),
    "ch3_num_train": count("ch3_num_train", "'for {ch3_num_train} datums': 'all 24 training datums'", 24, 24),
    "ch3_seconds_per_step": timing("ch3_seconds_per_step", "'about {ch3_seconds_per_step} s per step'"),
}


# --------------------------------------------------------------------------- #
# Chapter 4: three routes
# --------------------------------------------------------------------------- #
ROUTES = ("a", "b", "c")


def _ch4(route: str, what: str) -> str:
    return f"ch4_route_{route}_{what}"


_CH4_SAME_START = Claim(
    "'All three routes start from the same weights, so they start at the same point: KL X and mass M'",
    lambda v: all(
        abs(v[_ch4(r, w)] - v[_ch4("a", w)]) < FLOAT32_ROUNDING for r in ROUTES for w in ("kl_before", "mass_before")
    ),
)
_CH4_A_KL_SLOWER = Claim(
    "route (a)'s 'KL over the set falls too, but more slowly' (b, c after < a after < a before)",
    lambda v: max(v[_ch4("b", "kl_after")], v[_ch4("c", "kl_after")]) < v[_ch4("a", "kl_after")] < v[_ch4("a", "kl_before")],
)
_CH4_A_MASS_MOST = Claim(
    "'Route (a) raises the mass on the set the most' (a after > a before, and > b, c after)",
    lambda v: v[_ch4("a", "mass_after")] > max(v[_ch4("a", "mass_before")], v[_ch4("b", "mass_after")], v[_ch4("c", "mass_after")]),
)
_CH4_B_C_COINCIDE = Claim(
    "'Routes (b) and (c) ... their curves coincide. The largest difference between them at any measured "
    "step is {kl_diff} in KL and {mass_diff} in mass' (the final values differ by no more)",
    lambda v: abs(v[_ch4("b", "kl_after")] - v[_ch4("c", "kl_after")]) <= v["ch4_b_c_max_kl_diff"]
    and abs(v[_ch4("b", "mass_after")] - v[_ch4("c", "mass_after")]) <= v["ch4_b_c_max_mass_diff"],
)
_CH4_A_PARAPHRASE_MASS = Claim(
    "'Route (a)'s push onto the set carries over to the paraphrases: their mass on the set is A after "
    "training with (a), against B with (b)' (A > B)",
    lambda v: v[_ch4("a", "paraphrase_mass_after")] > v[_ch4("b", "paraphrase_mass_after")] > 0,
)
_CH4_A_PARAPHRASE_KL = Claim(
    "'The shape over the labels is further from the target with (a) ... a paraphrases KL of A against B "
    "for (b)' (A > B)",
    lambda v: v[_ch4("a", "paraphrase_kl_after")] > v[_ch4("b", "paraphrase_kl_after")] >= 0,
)
_CH4_C_PARAPHRASE_KL = Claim(
    "the table's route (c) paraphrases KL: (b) and (c) 'compute the same loss and the same gradient' "
    "(it equals (b)'s to float32 rounding)",
    lambda v: abs(v[_ch4("c", "paraphrase_kl_after")] - v[_ch4("b", "paraphrase_kl_after")]) < FLOAT32_ROUNDING,
)
_CH4_CALLABLE_SLOWER = Claim(
    "'route (b) runs two passes over the batch ... routes (a) and (c) run one'; 'The callable pays for its "
    "second pass' (each route's fastest step, timed taking turns: three positive timings, (b) slower than (a) and (c))",
    lambda v: all(is_timing(v[_ch4(r, "seconds_per_step")]) for r in ROUTES)
    and v[_ch4("b", "seconds_per_step")] > max(v[_ch4("a", "seconds_per_step")], v[_ch4("c", "seconds_per_step")]),
)

CH4 = {
    "ch4_grad_check_max_abs_diff": rounding(
        "ch4_grad_check_max_abs_diff", "'The gradient matches q - p to float32 rounding'"),
    "ch4_sdk_weights_max_abs_diff": rounding(
        "ch4_sdk_weights_max_abs_diff", "'The weights equal p - q on row T-1 (largest difference X)'"),
    "ch4_route_a_kl_before": _CH4_SAME_START & _CH4_A_KL_SLOWER,
    "ch4_route_a_mass_before": _CH4_SAME_START & _CH4_A_MASS_MOST,
    "ch4_num_steps": count("ch4_num_steps", "'After {ch4_num_steps} steps'", 1),
    "ch4_learning_rate": learning_rate("ch4_learning_rate"),
    "ch4_route_a_kl_after": _CH4_A_KL_SLOWER,
    "ch4_route_b_kl_after": _CH4_A_KL_SLOWER & _CH4_B_C_COINCIDE,
    "ch4_route_c_kl_after": _CH4_A_KL_SLOWER & _CH4_B_C_COINCIDE,
    "ch4_route_a_mass_after": _CH4_A_MASS_MOST,
    "ch4_route_b_mass_after": _CH4_A_MASS_MOST & _CH4_B_C_COINCIDE,
    "ch4_route_c_mass_after": _CH4_A_MASS_MOST & _CH4_B_C_COINCIDE,
    "ch4_route_a_paraphrase_kl_after": _CH4_A_PARAPHRASE_KL,
    "ch4_route_b_paraphrase_kl_after": _CH4_A_PARAPHRASE_KL,
    "ch4_route_c_paraphrase_kl_after": _CH4_C_PARAPHRASE_KL,
    "ch4_route_a_paraphrase_mass_after": _CH4_A_PARAPHRASE_MASS,
    "ch4_route_b_paraphrase_mass_after": _CH4_A_PARAPHRASE_MASS,
    "ch4_b_c_max_kl_diff": rounding(
        "ch4_b_c_max_kl_diff", "'Routes (b) and (c) agreed to X in KL at every measured step'"),
    "ch4_b_c_max_mass_diff": rounding(
        "ch4_b_c_max_mass_diff", "'the largest difference between them ... X in mass' (they coincide)"),
    "ch4_route_a_seconds_per_step": _CH4_CALLABLE_SLOWER,
    "ch4_route_b_seconds_per_step": _CH4_CALLABLE_SLOWER,
    "ch4_route_c_seconds_per_step": _CH4_CALLABLE_SLOWER,
    "ch4_callable_over_handle": Claim(
        "'the fastest of N steps took B s for the callable, {ratio} times the handle's C s' (ratio = B / C > 1)",
        lambda v: v["ch4_callable_over_handle"] > 1
        and math.isclose(
            v["ch4_callable_over_handle"],
            v[_ch4("b", "seconds_per_step")] / v[_ch4("c", "seconds_per_step")],
            rel_tol=1e-9,
        ),
    ),
}


# --------------------------------------------------------------------------- #
# Chapter 5: real data
# --------------------------------------------------------------------------- #
#: Dense [T, K]: "K × 8 bytes a row for the ids and K × 4 for the weights".
DENSE_BYTES_PER_ENTRY = 8 + 4
#: CSR: "one row pointer per row ... 8 bytes a row per tensor"; each stored value has an
#: 8-byte column index besides its own 8 (int64 id) or 4 (float32 weight) bytes.
INDEX_BYTES = 8


def csr_pair_bytes(T: float, ids: float, weights: float) -> float:
    """Bytes of CSR target_tokens + weights: row pointers (T + 1 each), values, column indices."""
    return 2 * INDEX_BYTES * (T + 1) + ids * (8 + INDEX_BYTES) + weights * (4 + INDEX_BYTES)


_CH5_BATCH = Claim(
    "'One forward on datums of lengths {lengths}': the short, long and transcript datums of a mixed "
    "batch (three lengths; short < long; the transcript is short's prompt plus the answer)",
    lambda v: len(lengths := v.ints("ch5_batch_lengths")) == 3 and lengths[0] < min(lengths[1:]),
)
_CH5_TRANSCRIPT = Claim(
    "'The transcript datum ({T} tokens, scored at row {row})' matched the prompt-only datum at its "
    "scored row, with 'the answer and end-of-turn token after the scored row' (T is the batch's third "
    "length, row = short T - 1, and row <= T - 3)",
    lambda v: v["ch5_transcript_T"] == v.ints("ch5_batch_lengths")[2]
    and v["ch5_transcript_row"] == v.ints("ch5_batch_lengths")[0] - 1
    and v["ch5_transcript_row"] <= v["ch5_transcript_T"] - 3,
)
_CH5_IMAGE_COUNTS = Claim(
    "'With a {N}-position image chunk, the prompt has {X} text tokens but model_input.length = {L}, and "
    "T is the second number' (L = X + N, N > 0)",
    lambda v: is_count(v["ch5_mm_image_positions"], 1)
    and v["ch5_mm_length"] == v["ch5_mm_text_tokens"] + v["ch5_mm_image_positions"],
)
_CH5_BATCH_STEP = falls("ch5_batch_kl_before", "ch5_batch_kl_after",
                        "'One KL step on the mixed batch moved the summed KL from A to B'")
_CH5_DENSE = Claim(
    "'Only {N} of the {E} weights are non-zero'; dense storage 'K × 8 bytes a row for the ids and "
    "K × 4 for the weights' (E = T K, dense bytes = 12 E, 0 < N <= K)",
    lambda v: v["ch5_entries_per_tensor"] == v["ch5_long_T"] * v["ch5_k_labels"]
    and v["ch5_dense_bytes"] == DENSE_BYTES_PER_ENTRY * v["ch5_entries_per_tensor"]
    and 0 < v["ch5_nonzero_weights"] <= v["ch5_k_labels"],
)
_CH5_SPARSE = Claim(
    "'CSR storage is {ratio} times smaller: {sparse} bytes against {dense}'; 'one row pointer per row "
    "... 8 bytes a row per tensor' (sparse = the CSR pair's bytes for K ids and N weights on one row; "
    "ratio = dense / sparse > 1)",
    lambda v: v["ch5_sparse_bytes"] == csr_pair_bytes(v["ch5_long_T"], v["ch5_k_labels"], v["ch5_nonzero_weights"])
    and v["ch5_dense_over_sparse"] > 1
    and math.isclose(v["ch5_dense_over_sparse"], v["ch5_dense_bytes"] / v["ch5_sparse_bytes"], rel_tol=1e-9),
)

CH5 = {
    "ch5_row_difference": rounding("ch5_row_difference", "'the largest difference is X, which is at most float rounding'"),
    "ch5_batch_lengths": _CH5_BATCH,
    "ch5_transcript_T": _CH5_TRANSCRIPT,
    "ch5_transcript_row": _CH5_TRANSCRIPT,
    "ch5_batch_kl_before": _CH5_BATCH_STEP,
    "ch5_batch_kl_after": _CH5_BATCH_STEP,
    "ch5_long_T": Claim(
        "'The diary prompt has {T} tokens': 'a ~3,000-token prompt'",
        lambda v: is_count(v["ch5_long_T"]) and about(v["ch5_long_T"], 3000),
    ) & _CH5_DENSE,
    "ch5_dense_bytes": _CH5_DENSE & _CH5_SPARSE,
    "ch5_sparse_bytes": _CH5_SPARSE,
    "ch5_dense_over_sparse": _CH5_SPARSE,
    "ch5_nonzero_weights": _CH5_DENSE,
    "ch5_entries_per_tensor": _CH5_DENSE,
    "ch5_long_forward_seconds": timing("ch5_long_forward_seconds", "'On this CPU the pass took X s'"),
    "ch5_k_labels": count("ch5_k_labels", "'{T} rows of {K} logprobs', the 21 label words", LABEL_COUNT, LABEL_COUNT),
    "ch5_mm_image_positions": _CH5_IMAGE_COUNTS,
    "ch5_mm_text_tokens": _CH5_IMAGE_COUNTS,
    "ch5_mm_length": _CH5_IMAGE_COUNTS,
    "ch5_ones_entries": Claim(
        "'all {E} of those entries would get gradients' with the short datum's weights left at 1 "
        "(E = short T × K)",
        lambda v: v["ch5_ones_entries"] == v.ints("ch5_batch_lengths")[0] * v["ch5_k_labels"],
    ),
}


# --------------------------------------------------------------------------- #
# Chapter 6: labels of several tokens
# --------------------------------------------------------------------------- #
_CH6_LABELS = Claim(
    "'{M} of the {L} labels are several tokens' (L = 21; 0 < M < L)",
    lambda v: v["ch6_labels"] == LABEL_COUNT and is_count(v["ch6_multi_token_labels"], 1, LABEL_COUNT - 1),
)
_CH6_DATUMS = Claim(
    "'One example now takes {D} datums and {P} positions, against one datum of {O} positions ... each "
    "datum repeats the prompt' (1 < D <= labels of several tokens, P > D * O)",
    lambda v: 1 < v["ch6_datums_per_example"] <= v["ch6_multi_token_labels"]
    and v["ch6_positions_exact"] > v["ch6_datums_per_example"] * v["ch6_positions_one_token"],
)
_CH6_DIFFERENCE = Claim(
    "'The largest is {X} of renormalized probability, on {label}' (a probability difference > 0.01, "
    "on one of the labels)",
    lambda v: 0.01 < v["ch6_largest_difference"] <= 1
    and v.text("ch6_largest_label") in {word.capitalize() for word in emotion_task.LABELS},
)
_CH6_MASS = Claim(
    "'the model puts {E} on average on the 21 whole labels, and {F} on their first tokens' "
    "(0 < E < F <= 1: a first token's probability is at least its label's)",
    lambda v: 0 < v["ch6_mass_exact"] < v["ch6_mass_first"] <= 1,
)
_CH6_STEP = falls("ch6_kl_before", "ch6_kl_after", "'Five steps took the mean exact KL on the batch from {before} to {after}'")
_CH6_COST = Claim(
    "'{D} datums per step here, for four examples, against four'; 'A step sends {P} positions instead "
    "of {O}' (D = 4 x datums per example, P > O)",
    lambda v: v["ch6_datums_per_step"] == 4 * v["ch6_datums_per_example"]
    and v["ch6_positions_per_step_exact"] > v["ch6_positions_per_step_one"] > 0,
)

CH6 = {
    "ch6_multi_token_labels": _CH6_LABELS & _CH6_DATUMS,
    "ch6_labels": _CH6_LABELS,
    "ch6_datums_per_example": _CH6_DATUMS,
    "ch6_positions_exact": _CH6_DATUMS,
    "ch6_positions_one_token": _CH6_DATUMS,
    "ch6_largest_difference": _CH6_DIFFERENCE,
    "ch6_largest_label": _CH6_DIFFERENCE,
    "ch6_mass_exact": _CH6_MASS,
    "ch6_mass_first": _CH6_MASS,
    "ch6_kl_before": _CH6_STEP,
    "ch6_kl_after": _CH6_STEP,
    "ch6_datums_per_step": _CH6_COST,
    "ch6_positions_per_step_exact": _CH6_COST,
    "ch6_positions_per_step_one": _CH6_COST,
    "ch6_seconds_exact": timing("ch6_seconds_exact", "'the exact step took {S} s'"),
    "ch6_seconds_one": timing("ch6_seconds_one", "'the one-token step {S} s'"),
}


# --------------------------------------------------------------------------- #
# The #703 page
# --------------------------------------------------------------------------- #
_I703_T = Claim(
    "'T counts the image's {N} positions; the {X} text tokens alone would be the wrong T'; 'the full "
    "{T}-position prompt', 'a ~3,000-position prompt' (T = X + N, N > 0, T about 3,000)",
    lambda v: is_count(v["i703_image_positions"], 1)
    and v["i703_T"] == v["i703_text_tokens"] + v["i703_image_positions"]
    and about(v["i703_T"], 3000),
)
#: "4 bytes per token, an image's encoded bytes, each tensor's values plus 8 bytes per CSR index"
_I703_REQUEST = Claim(
    "'this page's datum is {R} bytes, of which {I} are the JPEG and {X} the two CSR tensors' (R = I + "
    "4 × text tokens + X, I > 0); 'dense [T, K] arrays would make it {D}' (D = I + 4 × text tokens + "
    "12 T K > R)",
    lambda v: v["i703_image_bytes"] > 0
    and v["i703_request_bytes"] == v["i703_image_bytes"] + 4 * v["i703_text_tokens"] + v["i703_tensor_bytes"]
    and v["i703_dense_request_bytes"]
    == v["i703_image_bytes"] + 4 * v["i703_text_tokens"] + DENSE_BYTES_PER_ENTRY * v["i703_T"] * LABEL_COUNT
    and v["i703_dense_request_bytes"] > v["i703_request_bytes"],
)
_I703_ROW_POINTERS = Claim(
    "'Of the {X} bytes the two CSR tensors take, {P} are their row pointers: CSR stores one 8-byte "
    "pointer per row ... 16 bytes a row for the pair' (P = 16 (T + 1); X is P plus 21 ids and at "
    "most 21 weights with their column indices)",
    lambda v: v["i703_row_pointer_bytes"] == 2 * INDEX_BYTES * (v["i703_T"] + 1)
    and csr_pair_bytes(v["i703_T"], LABEL_COUNT, 0)
    <= v["i703_tensor_bytes"]
    <= csr_pair_bytes(v["i703_T"], LABEL_COUNT, LABEL_COUNT),
)
_I703_STEP = falls("i703_kl_before", "i703_kl_after",
                   "'one step lowered the KL ... from {before} to {after}'")
#: The base model's mass on each form of the labels after the page's own ending.
_I703_FORMS = Claim(
    "'After Emotion: the base model puts {S} of its probability on the spaced ids and {B} on the bare "
    "ones, so this page trains the spaced form' (probabilities, S > B)",
    lambda v: 0 <= v["i703_bare_mass_after_prefix"] < v["i703_spaced_mass_after_prefix"] <= 1,
)

#: compare_label_forms' report on the same ending: it recommends the spaced form (the one this page
#: trains), and another form holds more mass but fails the token checks.
_I703_BEST_FORM = Claim(
    "'the report recommends the {R} form, which this page trains. It also says that the {M} form holds "
    "{X} times the spaced form's mass but fails item 1' (R = spaced, M another form, X > 1)",
    lambda v: v.text("i703_recommended_form") == "spaced"
    and v.text("i703_most_mass_form") not in ("spaced", "")
    and v["i703_most_mass_ratio"] > 1,
)


I703 = {
    "i703_T": _I703_T & _I703_ROW_POINTERS,
    "i703_text_tokens": _I703_T,
    "i703_image_positions": _I703_T,
    "i703_kl_before": _I703_STEP,
    "i703_kl_after": _I703_STEP,
    "i703_bare_problems": count(
        "i703_bare_problems",
        "'the bare ending fails {N} of the checks' (at least one; at most one per label plus the shared-token check)",
        1,
        LABEL_COUNT + 1,
    ),
    "i703_spaced_mass_after_prefix": _I703_FORMS & _I703_BEST_FORM,
    "i703_bare_mass_after_prefix": _I703_FORMS,
    "i703_recommended_form": _I703_BEST_FORM,
    "i703_most_mass_form": _I703_BEST_FORM,
    "i703_most_mass_ratio": _I703_BEST_FORM,
    "i703_request_bytes": _I703_REQUEST,
    "i703_dense_request_bytes": _I703_REQUEST,
    "i703_image_bytes": _I703_REQUEST,
    "i703_tensor_bytes": _I703_REQUEST & _I703_ROW_POINTERS,
    "i703_row_pointer_bytes": _I703_ROW_POINTERS,
    "i703_fix_seconds": timing("i703_fix_seconds", "'the fix cell, one custom step and one forward ... took X s'"),
    "i703_handle_mode": Claim(
        "'This page's offline service answers False ... A step with this handle runs {mode}' (on this "
        "machine, two passes)",
        lambda v: v.text("i703_handle_mode") == "on this machine, two passes",
    ),
}


# --------------------------------------------------------------------------- #
# The questions next to #703
# --------------------------------------------------------------------------- #
_Q_HARD = Claim(
    "'The hard label raised the answer's probability from {before} to {after}' (probabilities, after > before)",
    lambda v: 0 <= v["q_hard_p_before"] < v["q_hard_p_after"] <= 1,
)
_Q_SFT = Claim(
    "'the answer word's probability at the label slot rises with it, from {before} to {after}'",
    lambda v: 0 <= v["q_hard_p_before"] < v["q_sft_p_after"] <= 1,
)
_Q_SOFT = falls("q_soft_kl_before", "q_soft_kl_after", "'The soft target's step lowered that KL from {before} to {after}'")
_Q_TOPK = Claim(
    "'its mass on the teacher's top K went from {before} to {after}' (probabilities, after > before); "
    "'the KL over the K tokens rose to {KL}' (a KL above the start's, which is ~0)",
    lambda v: 0 < v["q_topk_mass_before"] < v["q_topk_mass_after"] <= 1 and v["q_topk_kl_after"] > FLOAT32_ROUNDING,
)
_Q_RECOVERY = Claim(
    "'The client recovered with its optimizer took the same third step as its twin: their KLs differ by "
    "{R}'; 'Without the optimizer ... (a difference of {F})' (R at rounding, F larger)",
    lambda v: 0 <= v["q_recovered_gap"] <= 1e-6 < v["q_fresh_adam_gap"],
)

QUESTIONS = {
    "q_hard_p_before": _Q_HARD & _Q_SFT,
    "q_sft_p_after": _Q_SFT,
    "q_hard_p_after": _Q_HARD,
    "q_hard_kl_after": Claim("'so the KL to the soft target went to X' (a KL)", lambda v: is_kl(v["q_hard_kl_after"])),
    "q_soft_kl_before": _Q_SOFT,
    "q_soft_kl_after": _Q_SOFT,
    "q_topk_mass_before": _Q_TOPK,
    "q_topk_mass_after": _Q_TOPK,
    "q_topk_kl_after": _Q_TOPK,
    "q_recovered_gap": _Q_RECOVERY,
    "q_fresh_adam_gap": _Q_RECOVERY,
    "q_old_style_gap": rounding("q_old_style_gap", "'The two losses agree (a difference of X)'"),
    "q_backend_checks_passed": count("q_backend_checks_passed", "'This build's backend passed {N} of the 3 checks'", 3, 3),
}


# --------------------------------------------------------------------------- #
# Train on your data (the recipe)
# --------------------------------------------------------------------------- #
_R_LONG = Claim(
    "'Each prompt is about {T} positions, {I} of them the photo's' (about 3,000 positions, like #703's; "
    "0 < image positions < T)",
    lambda v: about(v["r_long_median_T"], 3000) and 0 < v["r_long_image_positions"] < v["r_long_median_T"],
)
_R_EVAL = falls("r_eval_kl_before", "r_eval_kl_after",
                "'Six steps took the mean KL on the held-out situations from {before} to {after}'")

RECIPE = {
    "r_long_median_T": _R_LONG,
    "r_long_image_positions": _R_LONG,
    "r_long_batch_bytes": Claim(
        "'A batch of four is {B} estimated bytes, one request under the SDK's default limits' "
        "(0 < B <= 5,000,000, fwdbwd_max_chunk_bytes_count)",
        lambda v: 0 < v["r_long_batch_bytes"] <= 5_000_000,
    ),
    "r_bad_status": count("r_bad_status", "'The run stopped with exit status {S} before anything was sent'", 2, 2),
    "r_eval_kl_before": _R_EVAL,
    "r_eval_kl_after": _R_EVAL,
    "r_uniform_kl": Claim("'{U} for the uniform distribution' (a KL)", lambda v: is_kl(v["r_uniform_kl"])),
    "r_prior_kl": Claim("'{P} for the mean of the training targets' (a KL)", lambda v: is_kl(v["r_prior_kl"])),
    "r_seconds_per_step": timing("r_seconds_per_step", "'A step took {S} s on this book's CPU'"),
}

#: docname -> {glue name the prose quotes: what the prose says about it, and its check}
CLAIMS: dict[str, dict[str, Claim]] = {
    "notebooks/01_target_shapes": CH1,
    "notebooks/02_gather_renormalize_kl": CH2,
    "notebooks/03_train": CH3,
    "notebooks/04_three_routes": CH4,
    "notebooks/05_real_data": CH5,
    "notebooks/06_multi_token_labels": CH6,
    "book/issue-703": I703,
    "book/questions": QUESTIONS,
    "book/train-on-your-data": RECIPE,
}


# --------------------------------------------------------------------------- #
# Tests
# --------------------------------------------------------------------------- #
def test_claims_are_about_pages_of_the_book():
    assert not set(CLAIMS) - set(PAGES), f"CLAIMS names pages that _toc.yml does not: {sorted(set(CLAIMS) - set(PAGES))}"


@pytest.mark.parametrize("docname", PAGES)
def test_every_quoted_glue_name_has_a_claim(docname):
    prose, _ = prose_and_code(docname)
    quoted, claimed = quoted_glue_names(prose), set(CLAIMS.get(docname, {}))
    assert not quoted - claimed, (
        f"{docname}: the prose quotes glued values that CLAIMS has no claim for (add what the prose "
        f"says about them): {sorted(quoted - claimed)}"
    )
    assert not claimed - quoted, f"{docname}: CLAIMS has claims the prose no longer quotes: {sorted(claimed - quoted)}"


@pytest.mark.parametrize("docname", sorted(CLAIMS))
def test_every_claim_is_glued_by_its_page(docname):
    _, code = prose_and_code(docname)
    patterns = glued_name_patterns(code)
    not_glued = [name for name in CLAIMS[docname] if not any(p.fullmatch(name) for p in patterns)]
    assert not not_glued, f"{docname}: claims about names the page's code does not glue: {not_glued}"


@pytest.mark.parametrize("docname", sorted(CLAIMS))
def test_prose_claims_hold_in_built_book(built_book, docname):
    values = Glued(read_glue(built_book.execute_dir, docname), docname)
    failures = false_claims(CLAIMS[docname], values)
    assert not failures, f"{docname}: {len(failures)} claim(s) in the prose do not hold:\n" + "\n".join(failures)
