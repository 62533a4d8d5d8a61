"""Generate the case-file reference from the pydantic schema in :mod:`cosinter.case`.

Used two ways:

* as a Sphinx extension (``extensions = ["case_schema"]`` in ``docs/conf.py``): on
  ``builder-inited`` it writes ``docs/generated/case_reference.rst``, which
  ``docs/case_reference.rst`` includes;
* as a plain module (``tests/test_docs.py``): :func:`sections` and :func:`render`
  need neither Sphinx nor FiPy.

Every table of the case file becomes one section; every key one row with its type,
SI unit (``json_schema_extra={"unit": ...}`` of the quantity types), default,
constraints (``gt``, ``ge``, ``lt``, ``min_length``, ``pattern`` ...) and
description. Nothing here is written by hand: a new key in the schema appears in
the reference at the next build.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from cosinter import case as case_module
from cosinter.units import DISPLAY_UNITS

#: Where the generated file goes, relative to the Sphinx source folder.
OUTPUT = Path("generated") / "case_reference.rst"


# --------------------------------------------------------------------------- data


@dataclass
class Row:
    """One key of a table."""

    key: str
    type: str
    unit: str
    default: str
    constraints: str
    description: str


@dataclass
class Section:
    """One table of the case file."""

    title: str  # as written in TOML, e.g. "[materials.NAME.species.SP]"
    paths: list[str]  # dotted paths with placeholders, e.g. "materials.NAME.species.SP"
    model: type[BaseModel]
    intro: str
    rows: list[Row] = field(default_factory=list)


# --------------------------------------------------------------------------- annotations


def _quantity_aliases() -> dict[int, str]:
    """id(BeforeValidator) -> quantity kind, from the Annotated aliases in cosinter.case.

    ``Length = Annotated[float, BeforeValidator(...), Field(unit)]``: the validator
    object is shared by every field of that type, so its identity names the kind
    ("length", "temperature_difference", ...), which keys :data:`DISPLAY_UNITS`.
    """
    out: dict[int, str] = {}
    for name, value in vars(case_module).items():
        if typing.get_origin(value) is not typing.Annotated:
            continue
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().removeprefix("principal_")
        for meta in value.__metadata__:
            if hasattr(meta, "func"):
                out[id(meta)] = snake
    return out


_ALIASES = _quantity_aliases()


def _strip_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Peel ``Annotated``: the bare type and the metadata list."""
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        metadata += list(annotation.__metadata__)
        annotation = typing.get_args(annotation)[0]
    return annotation, metadata


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _kind(metadata: list[Any]) -> str | None:
    for meta in metadata:
        if id(meta) in _ALIASES:
            return _ALIASES[id(meta)]
    return None


def _unit(metadata: list[Any], info: FieldInfo | None = None) -> str | None:
    extras = [m.json_schema_extra for m in metadata if isinstance(m, FieldInfo)]
    if info is not None:
        extras.append(info.json_schema_extra)
    for extra in extras:
        if isinstance(extra, dict) and "unit" in extra:
            return str(extra["unit"])
    return None


def _example(kind: str | None) -> str:
    """``e.g. "50 nm"`` from :data:`DISPLAY_UNITS` (which quotes with single quotes)."""
    text = DISPLAY_UNITS.get(kind or "", "")
    match = re.search(r"e\.g\. (.+)\)$", text)
    if not match:
        return ""
    examples = re.findall(r"'([^']*)'", match.group(1))
    return ", e.g. " + " or ".join(f'``"{e}"``' for e in examples) if examples else ""


def _type_text(annotation: Any, extra_metadata: list[Any]) -> tuple[str, str | None]:
    """Human-readable type of a leaf value and its SI unit (or None)."""
    annotation = _strip_optional(annotation)
    bare, metadata = _unwrap(annotation)
    metadata = metadata + extra_metadata
    kind = _kind(metadata)
    unit = _unit(metadata)
    origin = typing.get_origin(bare)
    if origin is typing.Literal:
        choices = ", ".join(
            f'``"{v}"``' if isinstance(v, str) else f"``{v}``" for v in typing.get_args(bare)
        )
        return f"one of {choices}", None
    if origin is tuple:  # principal values along the crystal axes
        label = (kind or "number").replace("_", " ")
        return (
            f"{label}: a scalar (isotropic) or principal values ``{{ a, b, c }}`` "
            f"or ``{{ ab, c }}``{_example(kind)}",
            unit,
        )
    if origin is list:
        inner, inner_unit = _type_text(typing.get_args(bare)[0], [])
        return f"array of {_plural(inner)}", inner_unit or unit
    if origin is dict:
        inner, inner_unit = _type_text(typing.get_args(bare)[1], [])
        head, sep, example = inner.partition(", e.g. ")
        return f"table of ``KEY = value``, each value a {head}{sep}{example}", inner_unit or unit
    if kind is not None:
        return f"{kind.replace('_', ' ')}{_example(kind)}", unit
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(bare, getattr(bare, "__name__", str(bare))), unit


def _plural(text: str) -> str:
    head, sep, tail = text.partition(",")
    return (head if head.endswith("s") else head + "s") + sep + tail


def _constraints(info: FieldInfo, annotation: Any) -> str:
    metadata = list(info.metadata) + _unwrap(_strip_optional(annotation))[1]
    out: list[str] = []
    for meta in metadata:
        if isinstance(meta, annotated_types.Gt):
            out.append(f"> {meta.gt}")
        elif isinstance(meta, annotated_types.Ge):
            out.append(f">= {meta.ge}")
        elif isinstance(meta, annotated_types.Lt):
            out.append(f"< {meta.lt}")
        elif isinstance(meta, annotated_types.Le):
            out.append(f"<= {meta.le}")
        elif isinstance(meta, annotated_types.MinLen):
            out.append(f"at least {meta.min_length} entr{'y' if meta.min_length == 1 else 'ies'}")
        elif isinstance(meta, annotated_types.MaxLen):
            out.append(f"at most {meta.max_length} entries")
        elif getattr(meta, "pattern", None):
            out.append(f"matches ``{meta.pattern}``")
    return ", ".join(out)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "(all defaults)"
        return f"``{value!r}``"
    value = info.default
    if value is None or value is PydanticUndefined:
        return "not set"
    if isinstance(value, bool):
        return f"``{str(value).lower()}``"
    if isinstance(value, str):
        return f'``"{value}"``' if value else '``""``'
    return f"``{value!r}``"


# --------------------------------------------------------------------------- text


def _rst(text: str) -> str:
    """Schema text -> RST: `x` -> ``x``; escape ``\\ * |`` outside inline literals."""
    text = re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)
    parts = re.split(r"(``.+?``)", text)
    for i in range(0, len(parts), 2):  # even parts are outside literals
        parts[i] = parts[i].replace("\\", "\\\\").replace("*", r"\*").replace("|", r"\|")
    return "".join(parts)


def _doc(model: type[BaseModel]) -> str:
    return _rst(inspect.cleandoc(model.__doc__ or ""))


# --------------------------------------------------------------------------- walking


def _submodels(annotation: Any) -> tuple[str, list[type[BaseModel]]] | None:
    """How a field nests tables: ("table" | "dict" | "array" | "union-array", models)."""
    bare, _ = _unwrap(_strip_optional(annotation))
    if _is_model(bare):
        return "table", [bare]
    origin = typing.get_origin(bare)
    if origin in (typing.Union, types.UnionType):
        # a table with alternatives (``orientation``: a table, a list of them, "random")
        models: list[type[BaseModel]] = []
        for arg in typing.get_args(bare):
            inner, _ = _unwrap(arg)
            if typing.get_origin(inner) is list:
                inner, _ = _unwrap(typing.get_args(inner)[0])
            if _is_model(inner) and inner not in models:
                models.append(inner)
        if len(models) == 1:
            return "table", models
    if origin in (dict, list):
        inner, _ = _unwrap(typing.get_args(bare)[-1])
        if _is_model(inner):
            return ("dict" if origin is dict else "array"), [inner]
        if origin is list and typing.get_origin(inner) in (typing.Union,):
            members = [_unwrap(a)[0] for a in typing.get_args(inner)]
            if all(_is_model(m) for m in members):
                return "union-array", members
    return None


def _title(path: list[str], arrays: set[int]) -> str:
    """TOML spelling of a table at ``path``; ``arrays`` marks array-of-table levels."""
    if not path:
        return "top level"
    last_array = max((i for i in arrays if i < len(path)), default=None)
    if last_array is None:
        return f"[{'.'.join(path)}]"
    head = f"[[{'.'.join(p for p in path[: last_array + 1] if p != 'N')}]]"
    rest = [p for p in path[last_array + 1 :] if p != "N"]
    return f"{head} {'.'.join(rest)}".strip()


def label(title: str) -> str:
    """Sphinx label of the section with this title."""
    return "case-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "top")


def _sentence(text: str) -> str:
    return text.rstrip(".")


@dataclass
class _Child:
    """A key whose value is a table (or tables): where its section(s) go."""

    name: str
    info: FieldInfo
    how: str
    models: list[type[BaseModel]]
    titles: list[str] = field(default_factory=list)


def _walk(
    model: type[BaseModel],
    path: list[str],
    arrays: set[int],
    out: list[Section],
    title: str,
    intro: str,
    inline_base: str | None = None,
    paths: list[str] | None = None,
) -> None:
    """Append the section of ``model`` at ``path``, then those of its sub-tables.

    ``inline_base`` is set for a member of a list of alternatives (a temperature step):
    its sub-tables are inline tables of that step (``{ staircase = { ... } }``).
    """
    section = Section(title=title, paths=paths or [".".join(path)], model=model, intro=intro)
    out.append(section)
    children: list[_Child] = []
    grouped: dict[type[BaseModel], _Child] = {}
    row_child: dict[str, _Child] = {}
    kinds = {
        "table": "table",
        "dict": "tables, one per name",
        "array": "array of tables",
        "union-array": "array of tables, each one of",
    }
    for name, info in model.model_fields.items():
        nested = _submodels(info.annotation)
        constraints = _constraints(info, info.annotation)
        if nested is None:
            type_text, unit = _type_text(info.annotation, list(info.metadata))
            section.rows.append(
                Row(
                    key=name,
                    type=type_text,
                    unit=unit or _unit([], info) or "",
                    default=_default(info),
                    constraints=constraints,
                    description=_rst(info.description or ""),
                )
            )
            continue
        how, models = nested
        if how == "table" and models[0] in grouped:  # [boundaries.left] / [boundaries.right]
            child = grouped[models[0]]
            child.titles = [f"{child.titles[0]} / {_title([*path, name], arrays)}"]
        else:
            child = _Child(name, info, how, models)
            if how == "table" and inline_base is not None:
                keys = ", ".join(models[0].model_fields)
                child.titles = [f"{inline_base} {{ {name} = {{ {keys} }} }}"]
            elif how == "table":
                child.titles = [_title([*path, name], arrays)]
                grouped[models[0]] = child
            elif how == "dict":
                placeholder = "SP" if "NAME" in path else "NAME"
                child.titles = [_title([*path, name, placeholder], arrays)]
            elif how == "array":
                child.titles = [_title([*path, name, "N"], arrays | {len(path)})]
            else:  # a list of tagged alternatives: the temperature steps
                base = _title([*path, name, "N"], arrays | {len(path)})
                child.titles = [f"{base} {{ {', '.join(m.model_fields)} }}" for m in models]
            children.append(child)
        row_child[name] = child
        section.rows.append(
            Row(
                key=name,
                type=how,  # links are filled in below, once grouped titles are final
                unit="",
                default=_default(info),
                constraints=constraints,
                description=_rst(info.description or _first_line(models[0])),
            )
        )
    for row in section.rows:
        if row.key in row_child:
            child = row_child[row.key]
            links = ", ".join(f":ref:`{label(t)}`" for t in child.titles)
            row.type = f"{kinds[child.how]} {links}"
    for child in children:
        sub_intro = _doc(child.models[0])
        described = _rst(_sentence(child.info.description or ""))
        if not described:
            where = ""
        elif path:
            where = f"``{child.name}`` in ``{title}``: {described}."
        else:
            where = f"{described}."
        if child.how == "table":
            members = [
                n
                for n, i in model.model_fields.items()
                if _submodels(i.annotation) == ("table", child.models)
            ]
            notes = "; ".join(
                f"``{n}``: {_rst(_sentence(model.model_fields[n].description or ''))}"
                for n in members
                if model.model_fields[n].description
            )
            _walk(
                child.models[0],
                [*path, child.name],
                arrays,
                out,
                title=child.titles[0],
                intro=_join(sub_intro, notes + "." if len(members) > 1 and notes else where),
                paths=[".".join([*path, n]) for n in members],
            )
        elif child.how == "dict":
            placeholder = "SP" if "NAME" in path else "NAME"
            _walk(
                child.models[0],
                [*path, child.name, placeholder],
                arrays,
                out,
                title=child.titles[0],
                intro=_join(sub_intro, where),
            )
        elif child.how == "array":
            _walk(
                child.models[0],
                [*path, child.name, "N"],
                arrays | {len(path)},
                out,
                title=child.titles[0],
                intro=_join(sub_intro, where),
            )
        else:
            base = _title([*path, child.name, "N"], arrays | {len(path)})
            for member, member_title in zip(child.models, child.titles, strict=True):
                _walk(
                    member,
                    [*path, child.name, "N"],
                    arrays | {len(path)},
                    out,
                    title=member_title,
                    intro=_join(_doc(member), where),
                    inline_base=base,
                )


def _first_line(model: type[BaseModel]) -> str:
    return _doc(model).split("\n\n")[0].replace("\n", " ")


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def sections() -> list[Section]:
    """Every table of the case file, in schema order (the top level first)."""
    out: list[Section] = []
    _walk(
        case_module.Case,
        [],
        set(),
        out,
        title="top level",
        intro="The tables of a case file. Only ``[case]``, ``[mesh]``, ``[[layers]]``, "
        "``[species]`` and ``[temperature]`` are required.",
    )
    return out


# --------------------------------------------------------------------------- rendering


def _cell(text: str) -> str:
    return text if text else "–"


def render() -> str:
    """The reference as reStructuredText (section headings use ``-`` and ``~``)."""
    lines = [
        ".. This file is generated from cosinter.case by docs/_ext/case_schema.py;",
        "   edit the schema (field descriptions, units), not this file.",
        "",
    ]
    for section in sections():
        top = section.title == "top level"
        heading = "The top level" if top else f"``{section.title}``"
        lines += [f".. _{label(section.title)}:", "", heading, "~" * (len(heading) + 4), ""]
        if section.intro:
            lines += [section.intro, ""]
        set_paths = ", ".join(f"``{_set_path(p)}.KEY``" if p else "``KEY``" for p in section.paths)
        lines += [
            f"Schema class: ``cosinter.case.{section.model.__name__}``; "
            f"``--set`` path: {set_paths}.",
            "",
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 14 26 8 10 10 32",
            "   :class: case-keys",
            "",
            "   * - key",
            "     - type",
            "     - SI unit",
            "     - default",
            "     - constraints",
            "     - description",
        ]
        for row in section.rows:
            lines += [
                f"   * - ``{row.key}``",
                f"     - {_cell(row.type)}",
                f"     - {_cell(row.unit)}",
                f"     - {_cell(row.default)}",
                f"     - {_cell(row.constraints)}",
                f"     - {_cell(row.description)}",
            ]
        lines.append("")
    return "\n".join(lines)


def _set_path(path: str) -> str:
    """Dotted path with readable placeholders: ``layers.<n>``, ``materials.<name>``."""
    names = {"N": "<n>", "NAME": "<name>", "SP": "<sp>"}
    return ".".join(names.get(part, part) for part in path.split("."))


def write_if_changed(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` unless it already holds it (keeps Sphinx's cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def write(srcdir: Path) -> Path:
    """Write the reference under ``srcdir`` if its content changed; return the path."""
    return write_if_changed(Path(srcdir) / OUTPUT, render())


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point."""

    def generate(app: Any) -> None:
        write(Path(app.srcdir))

    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
