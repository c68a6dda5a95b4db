"""How well the originality gate separates near-copies from honest models, on the demo's cast.

No services: each round is generated with the dataset generator, every profile of the cast makes
its predictions (``participants.predict``), and the uploads go through ``check_originality`` in
the demo's upload order, against the round's earlier submissions exactly as the submissions
service keeps them (every accepted version; the uploader's own earlier versions of the *same
model* left out, see ``same_model``).

Who counts as what:

- **near-copy**: an upload that is someone else's (or the same participant's other) model with a
  whisper of noise: the demo's copycats, one self-copy per round (the first good model's
  predictions uploaded again under a second model of the same participant), and one bent copy
  (``bent``: a monotone transform, which keeps the ranks and so CORR and MMC). All must be flagged.
- **honest independent**: the latest (scored) version of every other model: good, weak, noise,
  the constant benchmark and the prober. Each was made on its own, so none should be flagged. The
  prober's re-uploads are versions of one model; they are compared with everyone else's uploads
  (and count through the prober's latest version), never with each other.

The constant 0.5 benchmark is admitted as in the demo (it is compared, and flags nothing: its
correlation is undefined).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crowdquant.demo import participants as cast
from services.submissions.domain import dataset as datagen
from services.submissions.domain.originality import EarlierSubmissions, OriginalityRule, check_originality

PROBES = 12  # the demo's prober re-uploads this many perturbations before its final version


@dataclass(frozen=True)
class Upload:
    participant: str
    model: str
    kind: str  # a cast kind, or "self-copy"
    values: np.ndarray


@dataclass
class GateRates:
    """Counts over all measured rounds, and the flagged honest models by name (to look at)."""

    copies: int = 0
    copies_flagged: int = 0
    honest: int = 0
    honest_flagged: int = 0
    flagged_honest: list[str] = field(default_factory=list)
    missed_copies: list[str] = field(default_factory=list)

    @property
    def copy_rate(self) -> float:
        return self.copies_flagged / self.copies if self.copies else 1.0

    @property
    def honest_rate(self) -> float:
        return self.honest_flagged / self.honest if self.honest else 0.0

    def add(self, other: GateRates) -> None:
        self.copies += other.copies
        self.copies_flagged += other.copies_flagged
        self.honest += other.honest
        self.honest_flagged += other.honest_flagged
        self.flagged_honest += other.flagged_honest
        self.missed_copies += other.missed_copies


def bent(values: np.ndarray) -> np.ndarray:
    """A copy bent by a monotone map (the cube of the distance from 0.5): same ranks, Pearson ~0.8."""
    d = np.asarray(values, dtype=np.float64) - 0.5
    top = float(np.abs(d).max()) or 1.0
    return 0.5 + d**3 / top**2


COPY_KINDS = ("copy", "self-copy", "bent-copy")


def uploads(spec: datagen.DatasetSpec, n_participants: int, round_number: int = 1) -> list[Upload]:
    """The round's uploads in the demo's order: everyone but the copycats, then the copycats.

    The demo sees obfuscated features; obfuscation maps the features one-to-one, so the models
    and their predictions' similarities are those of the raw features used here.
    """
    data = datagen.generate(spec)
    profiles = cast.profiles(n_participants, n_features=data.n_features)
    out: list[Upload] = []
    source: np.ndarray | None = None
    for profile in profiles:
        if profile.kind == "copy":
            continue
        _, values = cast.predict(profile, data, round_number)
        if profile.kind == "prober":
            for variant in cast.perturbations(values, PROBES, profile.seed + round_number):
                out.append(Upload(profile.name, profile.name, "prober", variant))
        out.append(Upload(profile.name, profile.name, profile.kind, values))
        if profile.kind == "good" and source is None:
            source = values
            # The same participant's second model: its own predictions again, with a whisper of noise.
            out.append(
                Upload(
                    profile.name,
                    profile.name + "-again",
                    "self-copy",
                    cast.near_copy(values, profile.seed + 7 * round_number),
                )
            )
    assert source is not None, "the cast has no good model to copy"
    for profile in profiles:
        if profile.kind == "copy":
            out.append(Upload(profile.name, profile.name, "copy", cast.near_copy(source, profile.seed + round_number)))
    out.append(Upload("bender", "bender", "bent-copy", bent(source)))
    return out


def measure_round(round_uploads: list[Upload], rule: OriginalityRule, *, same_model: bool = True) -> GateRates:
    """Run the gate over one round's uploads in order; count the latest version of every model.

    ``same_model``: an upload is not compared with earlier versions of its own model (the
    service's rule). False gives the 2017 rule: not compared with any of its participant's uploads.
    """
    n = round_uploads[0].values.size
    earlier = EarlierSubmissions.empty(n)
    owners: list[tuple[str, str]] = []
    latest: dict[str, tuple[Upload, bool]] = {}
    for up in round_uploads:
        aligned = np.asarray(up.values, dtype=np.float32)
        if same_model:
            exclude = np.asarray([m == up.model for _, m in owners], dtype=bool)
        else:
            exclude = np.asarray([p == up.participant for p, _ in owners], dtype=bool)
        result = check_originality(aligned, earlier, rule, exclude=exclude if exclude.any() else None)
        latest[up.model] = (up, result.original)
        earlier = earlier.with_submission(f"{up.model} v{len(owners)}", aligned)
        owners.append((up.participant, up.model))
    rates = GateRates()
    for model, (up, original) in latest.items():
        if up.kind in COPY_KINDS:
            rates.copies += 1
            rates.copies_flagged += not original
            if original:
                rates.missed_copies.append(model)
        else:
            rates.honest += 1
            rates.honest_flagged += not original
            if not original:
                rates.flagged_honest.append(model)
    return rates


def measure(
    rule: OriginalityRule, seeds: list[int], n_participants: int = 50, *, small: bool = False, same_model: bool = True
) -> GateRates:
    """Rates over one generated round per seed (the demo's cast; ``small``: the demo's --small size)."""
    total = GateRates()
    for seed in seeds:
        spec = datagen.DatasetSpec(seed=seed)
        if small:
            spec = datagen.DatasetSpec(
                seed=seed,
                n_training=6000,
                n_validation=3000,
                n_live=1000,
                n_features=10,
                n_training_eras=20,
                n_validation_eras=5,
                n_live_eras=1,
                signal=0.4,
            )
        total.add(measure_round(uploads(spec, n_participants, round_number=seed), rule, same_model=same_model))
    return total
