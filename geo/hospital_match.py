"""Hospitals and treatments named the way planners write them, matched to a dataset's ids.

A hospital is named by site id, AGB code (when the sites table has an ``agb`` column) or name.
Names are normalised first (accents, case, punctuation, "St."/"Sint", "Universitair Medisch
Centrum"/"UMC", "Medisch Centrum"/"MC", "Ziekenhuis"/"ZH" also inside compound words,
"locatie"), and every site is known by its name, its name with its town and its organisation
with its town. A normalised exact hit is an *exact* match; otherwise rapidfuzz's
``token_set_ratio`` scores every site (a name whose words are all in a site's name scores 100),
the best at :data:`MIN_SCORE` or more is a *fuzzy* match, and a tie within :data:`TIE_MARGIN`
points of it is ambiguous (an organisation with several sites named without its location): a
:class:`DataError` listing the candidates. Below :data:`MIN_SCORE` the row is unknown; the
error names the three nearest sites.

Treatments are named by id, by the dataset's (English) name or by the Dutch name of the norm
reports (``geo/data/treatment_names_nl.csv``), matched the same way.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rapidfuzz import fuzz, process

from herschik.errors import DataError

DATA_DIR = Path(__file__).resolve().parent / "data"
DUTCH_NAMES = DATA_DIR / "treatment_names_nl.csv"
MUNICIPALITY_AREAS = DATA_DIR / "default_municipalities" / "areas.csv"
#: short names planners use that no normalisation derives (LUMC, UMCG, Tergooi MC ...)
ALIASES = DATA_DIR / "hospital_aliases.csv"

#: lowest fuzzy score (0-100) accepted as a match
MIN_SCORE = 86.0
#: candidates within this many points of the best are a tie (ambiguous)
TIE_MARGIN = 2.0

_PHRASES = (
    (r"\buniversitair medisch centrum\b", "umc"),
    (r"\bacademisch medisch centrum\b", "amc"),
    (r"\bmedisch centrum\b", "mc"),
    (r"\bmedical center\b", "mc"),
    (r"\bziekenhuizen\b", "zh"),
    (r"\bziekenhuisgroep\b", "zh groep"),
    (r"(?<=\w)ziekenhuis\b", " zh"),  # HagaZiekenhuis, Flevoziekenhuis
    (r"\bziekenhuis\b", "zh"),
    (r"\bhospital\b", "zh"),
    (r"\bsint\b", "st"),
    (r"\bsaint\b", "st"),
    (r"\bsinte\b", "st"),
    (r"\b(hoofd)?locatie\b", " "),
    (r"\blocation\b", " "),
    (r"\bstichting\b", " "),
)


def normalise(text: str) -> str:
    """Lower case, no accents or punctuation, the usual abbreviations written one way."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("'s-", "s ").replace("+", " ").replace("&", " en ")
    text = re.sub(r"[^a-z0-9]+", " ", text)
    for pattern, short in _PHRASES:
        text = re.sub(pattern, short, text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Match:
    """How one name was resolved: ``kind`` is ``id``, ``agb``, ``exact`` or ``fuzzy``."""

    query: str
    target: str
    target_name: str
    kind: str
    score: float


class Matcher:
    """Match names against ``(id, display name, variants)`` candidates."""

    def __init__(self, what: str, field: str, candidates: list[tuple[str, str, list[str]]],
                 codes: dict[str, str] | None = None) -> None:
        self.what = what
        self.field = field
        self.ids = [c[0] for c in candidates]
        self.names = {c[0]: c[1] for c in candidates}
        self.id_lookup = {c[0].lower(): c[0] for c in candidates}
        self.codes = codes or {}
        #: names (normalised) that are known but cannot be imported, with the reason
        self.refused: dict[str, str] = {}
        self.variant_owner: list[str] = []
        self.variants: list[str] = []
        # exact hits in two tiers: a candidate's own name before the derived variants
        # (organisation + town, aliases), which a site of the same organisation can share
        own: dict[str, set[str]] = {}
        derived: dict[str, set[str]] = {}
        for ident, display, variants in candidates:
            own.setdefault(normalise(display), set()).add(ident)
            for variant in sorted({normalise(v) for v in variants if str(v).strip()}):
                self.variants.append(variant)
                self.variant_owner.append(ident)
                derived.setdefault(variant, set()).add(ident)
        self.exact_tiers = (own, derived)
        self._cache: dict[str, Match] = {}

    def match(self, query: str, file: str, row: int) -> Match:
        """The one candidate ``query`` names; DataError when unknown or ambiguous."""
        if query in self._cache:
            return self._cache[query]
        found = self._match(query, file, row)
        self._cache[query] = found
        return found

    def _match(self, query: str, file: str, row: int) -> Match:
        text = query.strip()
        if normalise(text) in self.refused:
            raise DataError(file, row, self.field, f"{query!r} {self.refused[normalise(text)]}")
        if text.lower() in self.id_lookup:
            ident = self.id_lookup[text.lower()]
            return Match(query, ident, self.names[ident], "id", 100.0)
        if text.isdigit():
            # AGB codes: Excel drops leading zeros, so compare without them
            ident = self.codes.get(text.lstrip("0"))
            if ident is not None:
                return Match(query, ident, self.names[ident], "agb", 100.0)
            if len(text) >= 6:
                where = ("is not in sites.csv" if self.codes else
                         "cannot be matched: the dataset's sites.csv has no agb column")
                raise DataError(file, row, self.field, f"AGB code {text} {where}")
        key = normalise(text)
        for tier in self.exact_tiers:
            owners = sorted(tier.get(key, ()))
            if len(owners) == 1:
                return Match(query, owners[0], self.names[owners[0]], "exact", 100.0)
            if len(owners) > 1:
                self._ambiguous(query, owners, file, row)
        best: dict[str, float] = {}
        scored = process.extract(key, self.variants, scorer=fuzz.token_set_ratio,
                                 limit=None, score_cutoff=0)
        for _, score, index in scored:
            owner = self.variant_owner[index]
            # the plain ratio breaks ties between sites whose names all contain the query
            tiebreak = fuzz.ratio(key, self.variants[index]) / 1000.0
            best[owner] = max(best.get(owner, 0.0), float(score) + tiebreak)
        ranking = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
        top, top_score = ranking[0]
        if top_score < MIN_SCORE:
            nearest = "; ".join(f"{self.names[i]} ({i})" for i, _ in ranking[:3])
            scope = (" (only treatments with norm data in treatments.csv can be imported)"
                     if self.what == "treatment" else "")
            raise DataError(file, row, self.field,
                            f"unknown {self.what} {query!r}{scope}; nearest: {nearest}")
        ties = [i for i, s in ranking if s >= top_score - TIE_MARGIN and s >= MIN_SCORE]
        if len(ties) > 1:
            self._ambiguous(query, ties, file, row)
        return Match(query, top, self.names[top], "fuzzy", round(min(top_score, 100.0), 1))

    def _ambiguous(self, query: str, owners: list[str], file: str, row: int) -> None:
        listed = "; ".join(f"{self.names[i]} ({i})" for i in owners[:8])
        raise DataError(file, row, self.field,
                        f"{self.what} {query!r} is ambiguous, it names {len(owners)} "
                        f"{self.what}s: {listed}; write the location or the id")

    def nearest(self, query: str, k: int = 3) -> list[str]:
        """The ``k`` nearest display names (for the match table of unmatched rows)."""
        hits = process.extract(normalise(query), self.variants, scorer=fuzz.token_set_ratio,
                               limit=5 * k)
        out: list[str] = []
        for _, _, index in hits:
            name = self.names[self.variant_owner[index]]
            if name not in out:
                out.append(name)
        return out[:k]


def municipality_names() -> dict[str, str]:
    """CBS municipality code -> name (the embedded municipality areas), for town suffixes."""
    if not MUNICIPALITY_AREAS.is_file():
        return {}
    table = pd.read_csv(MUNICIPALITY_AREAS, dtype=str, keep_default_na=False)
    return dict(zip(table["area_id"], table["area_name"], strict=True))


def hospital_matcher(sites: pd.DataFrame) -> Matcher:
    """Matcher over a sites table: name, name + town, organisation + town, the known aliases
    (``geo/data/hospital_aliases.csv``) and the AGB code when the table has an ``agb`` column."""
    towns = municipality_names()
    aliases: dict[str, list[str]] = {}
    if ALIASES.is_file():
        for row in pd.read_csv(ALIASES, dtype=str, keep_default_na=False).itertuples():
            aliases.setdefault(row.site_id, []).append(row.alias)
    candidates = []
    for site in sites.itertuples(index=False):
        town = towns.get(str(site.municipality_code), "")
        name, organisation = str(site.site_name), str(site.organisation)
        variants = [name, organisation + " " + town, *aliases.get(str(site.site_id), [])]
        if town and normalise(town) not in normalise(name):
            variants.append(name + " " + town)
        candidates.append((str(site.site_id), name, variants))
    codes = {}
    if "agb" in sites.columns:
        codes = {str(a).strip().lstrip("0"): str(s) for s, a in zip(
            sites["site_id"], sites["agb"], strict=True) if str(a).strip()}
    return Matcher("hospital", "hospital", candidates, codes)


def treatment_matcher(treatments: pd.DataFrame) -> Matcher:
    """Matcher over the treatments with patients (kinds volume/none): id, name, Dutch name."""
    dutch: dict[str, list[str]] = {}
    if DUTCH_NAMES.is_file():
        table = pd.read_csv(DUTCH_NAMES, dtype=str, keep_default_na=False)
        for row in table.itertuples(index=False):
            dutch.setdefault(row.intervention_id, []).append(row.name_nl)
    candidates = []
    refused = {}
    for row in treatments.itertuples(index=False):
        if row.kind == "process":
            for name in (row.intervention_id, row.name):
                refused[normalise(name)] = ("is a process norm (a share of patients treated in "
                                            "time), not a volume norm: it has no volumes to "
                                            "import")
            continue
        candidates.append((str(row.intervention_id), str(row.name),
                           [str(row.name), *dutch.get(row.intervention_id, [])]))
    matcher = Matcher("treatment", "treatment", candidates)
    matcher.refused = refused
    return matcher
