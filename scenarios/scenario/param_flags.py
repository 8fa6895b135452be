"""Command-line flags derived from the parameter model (:class:`SolveParams`).

Each field ``name`` becomes ``--name`` (underscores as dashes), so a new parameter gets its flag
without a CLI edit. By the field's type:

- ``float`` / ``int`` / ``str`` (optional or not): one value;
- ``bool``: a switch that turns it on;
- ``Literal[...]``: one of the choices;
- ``dict[K, float | int]``: repeatable ``--name KEY=VALUE`` (keys are treatment ids, or the
  Literal's choices);
- ``list[Model]``: repeatable ``--name A[:B]``, the model's fields in order, trailing defaults
  optional (``--force-keep SITE[:TREATMENT]``);
- ``list[list[x]]``: repeatable ``--name A,B`` (one inner list each); ``list[x]``: repeatable.

Help is the field's ``description``; its ``json_schema_extra`` may add ``metavar`` and
``example``. A flag not given stays ``None``: the scenario file (or the default) applies. Given
dict entries override the file's key by key; given list items replace the file's list.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal, Union

from herschik.optimiser.params import SolveParams
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

# The flags written by hand before they were derived, in their order then: the order shows in a
# run's name and summary.json "overrides", so it stays; every other field follows in model order.
_FIRST = (
    "margin", "max_travel", "max_extra_travel", "objective", "max_loss_share",
    "single_sourcing", "allow_new_providers", "remote_areas", "small_region_rule", "solver",
    "time_limit", "mip_gap",
)
_SCALAR_METAVAR = {float: "F", int: "N", str: "TEXT"}
_PART_NAMES = {"intervention_id": "TREATMENT", "site_id": "SITE"}

Kind = Literal["scalar", "switch", "mapping", "records", "lists", "items"]


@dataclasses.dataclass(frozen=True)
class ParamFlag:
    """One derived flag: the field it sets, its spelling and how its values are read."""

    field: str
    flag: str
    kind: Kind
    metavar: str | None
    help: str
    parse: Callable[[str], Any] | None
    choices: tuple[str, ...] | None = None
    #: a dict flag's keys: treatment ids (None) or the Literal's choices
    key_choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return f"param_{self.field}"


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _literal_choices(annotation: Any) -> tuple[str, ...] | None:
    if typing.get_origin(annotation) is Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    return None


def _scalar_parser(annotation: Any, flag: str) -> Callable[[str], Any]:
    """str -> value of a scalar type (float, int, str or a Literal's choice)."""
    choices = _literal_choices(annotation)
    if choices is not None:
        def choice(text: str) -> str:
            if text not in choices:
                raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
            return text
        return choice
    if annotation in (float, int, str):
        return annotation  # argparse names the builtin in its message: "invalid float value"
    raise TypeError(f"{flag}: no command-line form for values of type {annotation!r}")


def _read(parse: Callable[[str], Any], text: str, whole: str, metavar: str) -> Any:
    """One part of a compound value, its error naming the whole value and the expected form."""
    try:
        return parse(text)
    except ValueError as error:
        reason = str(error) if parse not in (float, int) else f"{text!r} is not a {parse.__name__}"
        raise argparse.ArgumentTypeError(f"{whole!r}: {reason} (expected {metavar})") from None


def _part_name(name: str) -> str:
    return _PART_NAMES.get(name, name.upper())


def _mapping_flag(key_type: Any, value_type: Any, flag: str) -> tuple[str, Callable[[str], Any]]:
    key_parse = _scalar_parser(key_type, flag)
    value_parse = _scalar_parser(value_type, flag)
    metavar = ("NAME" if _literal_choices(key_type) else "TREATMENT") + "=" + _SCALAR_METAVAR.get(
        value_type, "VALUE")

    def pair(text: str) -> tuple[Any, Any]:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {metavar}")
        return _read(key_parse, key, text, metavar), _read(value_parse, value, text, metavar)

    return metavar, pair


def _records_flag(model: type[BaseModel], flag: str) -> tuple[str, Callable[[str], Any]]:
    fields = list(model.model_fields.items())
    last_required = max((i for i, (_, f) in enumerate(fields) if f.is_required()), default=-1)
    parts = [_part_name(name) for name, _ in fields]
    metavar = ":".join(parts[: last_required + 1]) + "".join(
        f"[:{part}" for part in parts[last_required + 1:]) + "]" * (len(parts) - last_required - 1)
    parsers = [_scalar_parser(_strip_optional(f.annotation), flag) for _, f in fields]

    def record(text: str) -> dict[str, Any]:
        values = text.split(":")
        if not last_required < len(values) <= len(fields):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {metavar}")
        data = {name: _read(parse, value, text, metavar)
                for (name, _), parse, value in zip(fields, parsers, values)}
        try:
            return model.model_validate(data).model_dump()
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise argparse.ArgumentTypeError(f"{text!r}: {where}: {first['msg']}") from None

    return metavar, record


def _help(name: str, info: FieldInfo, kind: Kind) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    text = info.description or name.replace("_", " ")
    if extra.get("example"):
        text += f"; e.g. {extra['example']}"
    default = info.get_default(call_default_factory=True)
    # a description that already names its default keeps its own words
    if kind == "scalar" and default is not None and "default" not in text:
        text += f" (default {format(default, 'g') if isinstance(default, float) else default})"
    if kind == "mapping":
        text += " (repeatable; overrides the scenario file's entry of that key)"
    elif kind in ("records", "lists", "items"):
        text += " (repeatable; replaces the scenario file's list)"
    return text.replace("%", "%%")  # argparse formats help with %


def _flag_for(name: str, info: FieldInfo) -> ParamFlag:
    flag = "--" + name.replace("_", "-")
    annotation = _strip_optional(info.annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    choices = _literal_choices(annotation)
    kind: Kind
    parse: Callable[[str], Any] | None
    key_choices = None
    if annotation is bool:
        kind, metavar, parse = "switch", None, None
    elif origin is dict:
        kind, key_choices = "mapping", _literal_choices(_strip_optional(args[0]))
        metavar, parse = _mapping_flag(_strip_optional(args[0]), _strip_optional(args[1]), flag)
    elif origin is list and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        kind = "records"
        metavar, parse = _records_flag(args[0], flag)
    elif origin is list and typing.get_origin(args[0]) is list:
        kind = "lists"
        item = _scalar_parser(typing.get_args(args[0])[0], flag)
        metavar = "A,B[,...]"

        def parse(text: str) -> list[Any]:
            return [_read(item, part, text, metavar) for part in text.split(",")]
    elif origin is list:
        kind, metavar = "items", _SCALAR_METAVAR.get(args[0], "VALUE")
        parse = _scalar_parser(args[0], flag)
    else:
        # a Literal takes argparse's own choices check (its message lists them)
        kind, parse = "scalar", None if choices else _scalar_parser(annotation, flag)
        metavar = None if choices else _SCALAR_METAVAR.get(annotation, "VALUE")
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    metavar = str(extra.get("metavar", metavar)) if metavar is not None else None
    return ParamFlag(field=name, flag=flag, kind=kind, metavar=metavar,
                     help=_help(name, info, kind), parse=parse, choices=choices,
                     key_choices=key_choices)


def param_flags(model: type[BaseModel] = SolveParams) -> list[ParamFlag]:
    """One flag per field of ``model``, in the CLI's order."""
    names = [n for n in _FIRST if n in model.model_fields]
    names += [n for n in model.model_fields if n not in names]
    return [_flag_for(name, model.model_fields[name]) for name in names]


def add_param_flags(
    parser: argparse.ArgumentParser, model: type[BaseModel] = SolveParams
) -> list[ParamFlag]:
    """Add one flag per parameter of ``model`` to ``parser``; returns what was added."""
    flags = param_flags(model)
    for spec in flags:
        if spec.kind == "switch":
            parser.add_argument(spec.flag, dest=spec.dest, action="store_true", default=None,
                                help=spec.help)
            continue
        options: dict[str, Any] = {"dest": spec.dest, "default": None, "help": spec.help,
                                   "type": spec.parse}
        if spec.choices is not None and spec.kind == "scalar":
            options["choices"] = list(spec.choices)
        else:
            options["metavar"] = spec.metavar
        if spec.kind != "scalar":
            options["action"] = "append"
        parser.add_argument(spec.flag, **options)
    return flags


def param_overrides(
    args: argparse.Namespace, model: type[BaseModel] = SolveParams
) -> dict[str, Any]:
    """The parameters given on the command line (``field -> value``), in the CLI's order."""
    given: dict[str, Any] = {}
    for spec in param_flags(model):
        value = getattr(args, spec.dest, None)
        if value is None:
            continue
        given[spec.field] = dict(value) if spec.kind == "mapping" else value
    return given


def dotted_overrides(overrides: dict[str, Any], model: type[BaseModel] = SolveParams
                     ) -> dict[str, Any]:
    """``overrides`` for a scenario file: dict entries as ``field.key`` so that they override
    the file's entry by entry instead of the whole table."""
    kinds = {spec.field: spec.kind for spec in param_flags(model)}
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        if kinds.get(name) == "mapping":
            out.update({f"{name}.{key}": item for key, item in value.items()})
        else:
            out[name] = value
    return out


def unknown_id(
    overrides: dict[str, Any], site_ids: Iterable[str], treatment_ids: Iterable[str],
    model: type[BaseModel] = SolveParams,
) -> str | None:
    """The first site or treatment id given by a flag that the dataset lacks, as a message naming
    the flag; None if all are known. Record fields ``site_id`` / ``intervention_id``, the keys of
    dict flags and the items of list flags name sites or treatments (``"*"``: every treatment).
    """
    sites, treatments = set(site_ids), set(treatment_ids)
    for spec in param_flags(model):
        value = overrides.get(spec.field)
        if value is None:
            continue
        named: list[tuple[str, str]] = []  # (kind, id)
        if spec.kind == "records":
            named = [(kind, str(entry[key])) for entry in value
                     for key, kind in (("site_id", "site"), ("intervention_id", "treatment"))
                     if key in entry]
        elif spec.kind == "mapping" and spec.key_choices is None:
            named = [("treatment", str(key)) for key in value]
        elif spec.kind == "lists":
            named = [("treatment", str(item)) for items in value for item in items]
        for kind, name in named:
            known = sites if kind == "site" else treatments
            if name not in known and not (kind == "treatment" and name == "*"):
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                return f"{spec.flag}: unknown {kind} {name!r}{hint}"
    return None
