"""The solve flags are derived from SolveParams: every field has its flag, of the right form."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from herschik.optimiser.params import SolveParams
from herschik.scenarios.cli.main import main
from herschik.scenarios.cli.parser import build_parser
from herschik.scenarios.cli.solve import solve_params_from_args
from herschik.scenarios.scenario.param_flags import add_param_flags, param_overrides
from pydantic import Field


def _solve_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["solve"]


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def test_every_parameter_has_a_solve_flag() -> None:
    flags = _flags(_solve_parser())
    missing = [name for name in SolveParams.model_fields
               if "--" + name.replace("_", "-") not in flags]
    assert missing == []


def test_every_parameter_has_a_description_for_its_help() -> None:
    assert [name for name, info in SolveParams.model_fields.items() if not info.description] == []


def test_the_contract_flags_keep_their_form() -> None:
    usage = " ".join(_solve_parser().format_usage().split())
    for form in ("[--margin F]", "[--max-travel MIN]", "[--objective {planner,travel,moved,"
                 "providers}]", "[--solver {highs,cbc}]", "[--time-limit S]", "[--mip-gap G]",
                 "[--max-extra-travel MIN]", "[--max-loss-share SHARE]", "[--single-sourcing]",
                 "[--allow-new-providers]", "[--margin-by-treatment TREATMENT=F]",
                 "[--force-keep SITE[:TREATMENT]]", "[--capacity SITE:TREATMENT:MAX_PATIENTS]"):
        assert form in usage, form
    help_text = " ".join(_solve_parser().format_help().split())
    assert "e.g. 0.1 for a 10% margin" in help_text


def test_flags_not_given_are_not_overrides() -> None:
    args = build_parser().parse_args(["solve", "--region", "example", "--out", "x"])
    assert param_overrides(args) == {}


class _WithMaxProviders(SolveParams):
    """A parameter model with a field the CLI module has never heard of."""

    max_providers: dict[str, int] = Field(
        default_factory=dict, description="at most P hospitals keep this treatment")
    quality_weight: float | None = Field(None, ge=0, description="a new number")


def test_a_new_field_gets_its_flag_without_a_cli_edit() -> None:
    parser = argparse.ArgumentParser()
    add_param_flags(parser, _WithMaxProviders)
    usage = " ".join(parser.format_usage().split())
    assert "[--max-providers TREATMENT=N]" in usage
    assert "[--quality-weight F]" in usage
    args = parser.parse_args(["--max-providers", "pancreas_resection=2",
                              "--max-providers", "*=4", "--quality-weight", "0.5"])
    overrides = param_overrides(args, _WithMaxProviders)
    assert overrides == {"max_providers": {"pancreas_resection": 2, "*": 4},
                         "quality_weight": 0.5}
    assert _WithMaxProviders(**overrides).max_providers["pancreas_resection"] == 2


@pytest.mark.parametrize(("argv", "flag"), [
    (["--margin-by-treatment", "hn_flap"], "--margin-by-treatment"),
    (["--margin-by-treatment", "hn_flap=lots"], "--margin-by-treatment"),
    (["--objective-weights", "cheapest=1"], "--objective-weights"),
    (["--force-keep", "A:B:C"], "--force-keep"),
    (["--capacity", "EX-UMC:*"], "--capacity"),
    (["--capacity", "EX-UMC:*:-5"], "--capacity"),
    (["--threads", "two"], "--threads"),
    (["--margin", "abc"], "--margin"),
])
def test_a_bad_flag_value_exits_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    code = main(["solve", "--region", "example", "--out", str(tmp_path / "x"), *argv])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0]
    assert not (tmp_path / "x").exists()


def test_flags_override_the_scenario_file(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'name = "s"\nmargin = 0.1\nmargin_by_treatment = { hn_flap = 0.3, hn_new = 0.2 }\n'
        'force_keep = [{ site_id = "EX-NORTH" }]\n', encoding="utf-8")
    args = build_parser().parse_args([
        "solve", "--region", "example", "--out", "x", "--scenario", str(scenario),
        "--margin-by-treatment", "hn_new=0.5", "--force-keep", "EX-SOUTH:hn_flap",
        "--max-loss-share", "0.5", "--objective", "travel"])
    params, info, _ = solve_params_from_args(args)
    # a dict entry overrides the file's entry of that key; a list replaces the file's list
    assert params.margin_by_treatment == {"hn_flap": 0.3, "hn_new": 0.5}
    assert [(k.site_id, k.intervention_id) for k in params.force_keep] == [("EX-SOUTH", "hn_flap")]
    assert params.margin == 0.1 and params.objective == "travel"
    # the overrides keep the order the hand-written flags had (it is in the run's name)
    assert list(info["overrides"])[:2] == ["objective", "max_loss_share"]
    assert "(objective=travel,max_loss_share=0.5," in info["name"]


def test_derived_flags_reach_the_solve(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["solve", "--region", "example", "--out", str(out), "--no-maps", "--no-report",
                 "--force-close", "EX-NORTH", "--margin-by-treatment", "hn_flap=0.25",
                 "--threads", "1"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"]["force_close"] == [{"site_id": "EX-NORTH", "intervention_id": "*"}]
    assert summary["scenario"]["margin_by_treatment"] == {"hn_flap": 0.25}
    assert summary["scenario"]["threads"] == 1
    import pandas as pd

    volumes = pd.read_csv(out / "site_volumes.csv")
    north = volumes[volumes["site_id"] == "EX-NORTH"]
    assert len(north) and not north["kept_after"].any()


@pytest.mark.parametrize(("argv", "message"), [
    (["--force-close", "EX-NORHT"], "--force-close: unknown site 'EX-NORHT' (did you mean"),
    (["--force-keep", "EX-NORTH:hn_flp"], "--force-keep: unknown treatment 'hn_flp'"),
    (["--capacity", "EX-UMC:nope:40"], "--capacity: unknown treatment 'nope'"),
    (["--margin-by-treatment", "hn_flp=0.1"], "--margin-by-treatment: unknown treatment"),
    (["--bundles", "hn_flap,nope"], "--bundles: unknown treatment 'nope'"),
    (["--force-close", "*:hn_flap"], "--force-close: unknown site '*'"),
])
def test_an_unknown_id_in_a_flag_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """Regression: a mistyped site or treatment in a derived flag was ignored silently."""
    code = main(["solve", "--region", "example", "--out", str(tmp_path / "x"), *argv])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "x").exists()


def test_unknown_ids_of_a_new_dict_field_are_found() -> None:
    from herschik.scenarios.scenario.param_flags import unknown_id

    overrides = {"max_providers": {"*": 2, "pancreas_resection": 1, "pancreas_resectoin": 3}}
    assert unknown_id(overrides, [], ["pancreas_resection"], _WithMaxProviders) == (
        "--max-providers: unknown treatment 'pancreas_resectoin' "
        "(did you mean 'pancreas_resection'?)")
    assert unknown_id({"max_providers": {"*": 2}}, [], [], _WithMaxProviders) is None
