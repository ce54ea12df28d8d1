"""Typed config sections: one dataclass per section of a run config, the single source of its keys and bounds.

A section is a dataclass deriving from `ConfigSection` whose fields are declared with `setting(...)`:

    @dataclass
    class MySection(ConfigSection):
        steps: int = setting(100, "optimizer steps", minimum=1)
        note: str = setting("x", "free text", affects_output=False)

From the declarations follow, with nothing written twice:
- `from_dict(values, path)`: unknown keys and missing required keys are named by dotted path
  (`pretrain.stpes: unknown key`); nested sections are built recursively; dataclass defaults apply.
- `validate()`: type, bound and choice checks from the field declarations, then the section's own `check()`
  for rules across fields; every message starts with the dotted key.
- `json_schema()`: the JSON Schema of the section (config/schema.yaml is generated from it).
- `depends_on()`: exactly the values a stage's output depends on: every field except those declared with
  `affects_output=False` (checkpoint intervals, thread counts, cluster resources).

Fields declared `internal=True` are set by the program (e.g. provenance recorded by `save_pretrained`), never by a
config file: they are left out of the schema and of `depends_on()`.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import MISSING
from typing import Any, ClassVar, Literal

from ga.errors import ConfigError

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


_BOUNDS = ("minimum", "exclusive_minimum", "maximum", "exclusive_maximum")
_SCHEMA_NAMES = {"exclusive_minimum": "exclusiveMinimum", "exclusive_maximum": "exclusiveMaximum"}


def setting(
    default: Any = MISSING,
    doc: str = "",
    *,
    default_factory: Any = MISSING,
    choices: tuple | None = None,
    pattern: str | None = None,
    min_items: int | None = None,
    affects_output: bool = True,
    resume_safe: bool = False,
    internal: bool = False,
    **bounds: float,
) -> Any:
    """A dataclass field of a config section with its documentation and constraints (see the module docstring).

    bounds: minimum, exclusive_minimum, maximum, exclusive_maximum (numbers, or list items for lists of numbers).
    affects_output=False: no output of any stage changes with the value (intervals, threads, cluster resources).
    resume_safe=True: the value changes an output (e.g. what validation measures), but a long-running stage may
    change it between a kill and a resume without restarting (see `resumable_depends_on`).
    A mutable default (list, dict) is copied for every instance.
    """
    unknown = set(bounds) - set(_BOUNDS)
    if unknown:
        raise TypeError(f"setting(): unknown bound(s) {sorted(unknown)}")
    if isinstance(default, (list, dict)):
        default, default_factory = MISSING, (lambda value=default: typing.cast(Any, type(value))(value))
    metadata = {
        "doc": doc,
        "choices": choices,
        "pattern": pattern,
        "min_items": min_items,
        "bounds": bounds,
        "affects_output": affects_output,
        "resume_safe": resume_safe,
        "internal": internal,
    }
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def _meta(field: dataclasses.Field) -> dict:
    return field.metadata or {
        "doc": "",
        "choices": None,
        "pattern": None,
        "min_items": None,
        "bounds": {},
        "affects_output": True,
        "resume_safe": False,
        "internal": False,
    }


def _has_default(field: dataclasses.Field) -> bool:
    return field.default is not MISSING or field.default_factory is not MISSING


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    """(T, True) for `T | None`, else (annotation, False)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, ConfigSection)


class ConfigSection:
    """Base of config-section dataclasses (see the module docstring)."""

    section_doc: ClassVar[str] = ""
    """One line describing the section in the schema (defaults to the first line of the class docstring)."""

    # ------------------------------------------------------------------ building
    @classmethod
    def _hints(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    @classmethod
    def from_dict(cls, values: dict | None, path: str = "") -> ConfigSection:
        """Build from a mapping; unknown or missing keys, bad types and bad values raise ConfigError naming them."""
        values = {} if values is None else values
        if not isinstance(values, dict):
            raise ConfigError(f"{path or '<top level>'}: must be a mapping, got {values!r}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            allowed = ", ".join(sorted(name for name, f in fields.items() if not _meta(f)["internal"]))
            raise ConfigError(f"{_join(path, unknown[0])}: unknown key (allowed here: {allowed})")
        hints = cls._hints()
        kwargs = {}
        for name, field in fields.items():
            key = _join(path, name)
            if name not in values:
                if not _has_default(field):
                    raise ConfigError(f"{key}: missing (required)")
                continue
            annotation, _ = _strip_optional(hints[name])
            value = values[name]
            if _is_section(annotation) and value is not None:
                value = annotation.from_dict(value, key)
            kwargs[name] = value
        try:
            return cls(**kwargs)
        except ConfigError as err:
            raise ConfigError(_join(path, str(err)) if path else str(err)) from None

    def to_dict(self) -> dict:
        """Plain, YAML/JSON-ready values (nested sections become mappings; tuples become lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    # ------------------------------------------------------------------ checking
    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field against its declaration, then `check()` (rules across fields); nested sections
        validated themselves when built. Messages start with the key relative to this section."""
        hints = self._hints()
        for field in dataclasses.fields(self):
            problem = _check_value(getattr(self, field.name), hints[field.name], _meta(field))
            if problem:
                raise ConfigError(f"{field.name}: {problem}")
        self.check()

    def check(self) -> None:
        """Rules across fields; raise ConfigError("key: why") with the key relative to this section."""

    # ------------------------------------------------------------------ what a stage depends on
    def depends_on(self) -> dict:
        """The values a stage's output depends on: every field but those declared `affects_output=False`."""
        return self._dependencies(resumable=False)

    def resumable_depends_on(self) -> dict:
        """`depends_on()` without `resume_safe` fields: what a stage's resumable checkpoints must agree on."""
        return self._dependencies(resumable=True)

    def _dependencies(self, resumable: bool) -> dict:
        result = {}
        for field in dataclasses.fields(self):
            meta = _meta(field)
            if meta["internal"] or not meta["affects_output"] or (resumable and meta["resume_safe"]):
                continue
            value = getattr(self, field.name)
            if isinstance(value, ConfigSection):
                # through the public methods, which a section may extend (e.g. with a program-set seed)
                value = value.resumable_depends_on() if resumable else value.depends_on()
                if not value:  # a nested section that changes no output
                    continue
            result[field.name] = _plain(value)
        return result

    # ------------------------------------------------------------------ schema
    @classmethod
    def json_schema(cls) -> dict:
        """JSON Schema of this section: types, bounds, choices and docs from the field declarations."""
        hints = cls._hints()
        properties, required = {}, []
        for field in dataclasses.fields(cls):
            meta = _meta(field)
            if meta["internal"]:
                continue
            properties[field.name] = _schema_for(hints[field.name], meta)
            if not _has_default(field):
                required.append(field.name)
        doc = cls.section_doc or (cls.__doc__ or "").strip().splitlines()[0]
        schema: dict[str, Any] = {"description": doc, "type": "object", "additionalProperties": False}
        if required:
            schema["required"] = required
        schema["properties"] = properties
        return schema


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _plain(value: Any) -> Any:
    if isinstance(value, ConfigSection):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_SCALARS: dict[Any, tuple[str, tuple[type, ...]]] = {
    bool: ("boolean", (bool,)),
    int: ("integer", (int,)),
    float: ("number", (int, float)),
    str: ("string", (str,)),
}


def _type_ok(value: Any, kind: Any) -> bool:
    if kind is Any:
        return True
    if kind in _SCALARS:
        python_types = _SCALARS[kind][1]
        return isinstance(value, python_types) and (kind is bool or not isinstance(value, bool))
    return True


def _type_name(annotation: Any) -> str:
    base, optional = _strip_optional(annotation)
    origin = typing.get_origin(base)
    if base in _SCALARS:
        name = _SCALARS[base][0]
    elif origin in (list, tuple):
        name = "list"
    elif origin is dict or base is dict:
        name = "mapping"
    elif origin is Literal:
        name = "one of " + ", ".join(map(repr, typing.get_args(base)))
    else:
        name = getattr(base, "__name__", str(base))
    return f"{name} or null" if optional else name


def _check_value(value: Any, annotation: Any, meta: dict) -> str | None:
    """Why `value` does not fit its declaration, or None."""
    base, optional = _strip_optional(annotation)
    if value is None:
        return None if optional else f"None is not of type {_type_name(annotation)!r}"
    origin = typing.get_origin(base)
    bad_type = f"{value!r} is not of type {_type_name(annotation)!r}"
    if _is_section(base):
        return None if isinstance(value, base) else bad_type
    if base in _SCALARS:
        if not _type_ok(value, base):
            return bad_type
        problem = _check_bounds(value, meta)
        if problem:
            return problem
    elif origin is Literal:
        if value not in typing.get_args(base):
            return f"{value!r} is not one of {list(typing.get_args(base))}"
    elif origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return bad_type
        item_type = typing.get_args(base)[0] if typing.get_args(base) else Any
        if meta.get("min_items") is not None and len(value) < meta["min_items"]:
            return f"{list(value)!r} should have at least {meta['min_items']} item(s)"
        for item in value:
            if not _type_ok(item, item_type):
                return f"item {item!r} is not of type {_type_name(item_type)!r}"
            problem = _check_bounds(item, meta)
            if problem:
                return f"item {problem}"
    elif origin is dict or base is dict:
        if not isinstance(value, dict):
            return bad_type
        args = typing.get_args(base)
        if args:
            for key, item in value.items():
                if not _type_ok(key, args[0]) or not _type_ok(item, args[1]):
                    return f"entry {key!r}: {item!r} is not of type {_type_name(args[1])!r}"
                problem = _check_bounds(item, meta)
                if problem:
                    return f"entry {key!r}: {problem}"
    if meta.get("choices") is not None and value not in meta["choices"]:
        return f"{value!r} is not one of {list(meta['choices'])}"
    if meta.get("pattern") is not None and not re.fullmatch(meta["pattern"], value):
        return f"{value!r} does not match {meta['pattern']!r}"
    return None


def _check_bounds(value: Any, meta: dict) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    bounds = meta.get("bounds", {})
    if "minimum" in bounds and value < bounds["minimum"]:
        return f"{value!r} is less than the minimum of {bounds['minimum']!r}"
    if "exclusive_minimum" in bounds and value <= bounds["exclusive_minimum"]:
        return f"{value!r} is less than or equal to the minimum of {bounds['exclusive_minimum']!r}"
    if "maximum" in bounds and value > bounds["maximum"]:
        return f"{value!r} is greater than the maximum of {bounds['maximum']!r}"
    if "exclusive_maximum" in bounds and value >= bounds["exclusive_maximum"]:
        return f"{value!r} is greater than or equal to the maximum of {bounds['exclusive_maximum']!r}"
    return None


def _schema_bounds(meta: dict) -> dict:
    return {_SCHEMA_NAMES.get(name, name): value for name, value in meta.get("bounds", {}).items()}


def _schema_for(annotation: Any, meta: dict) -> dict:
    base, optional = _strip_optional(annotation)
    origin = typing.get_origin(base)
    schema: dict[str, Any] = {}
    if meta.get("doc"):
        schema["description"] = meta["doc"]
    if _is_section(base):
        nested = base.json_schema()
        nested.pop("description", None)
        if optional:
            nested["type"] = ["object", "null"]
        return {**schema, **nested}
    if base in _SCALARS:
        schema["type"] = _SCALARS[base][0]
        schema.update(_schema_bounds(meta))
    elif origin is Literal or meta.get("choices") is not None:
        choices = list(typing.get_args(base)) if origin is Literal else list(meta["choices"])
        schema["enum"] = choices + ([None] if optional else [])
        return schema
    elif origin in (list, tuple):
        item_type = typing.get_args(base)[0] if typing.get_args(base) else Any
        schema["type"] = "array"
        items = {"type": _SCALARS[item_type][0]} if item_type in _SCALARS else {}
        items.update(_schema_bounds(meta))
        if item_type is str:
            items["minLength"] = 1
        schema["items"] = items
        if meta.get("min_items") is not None:
            schema["minItems"] = meta["min_items"]
    elif origin is dict or base is dict:
        schema["type"] = "object"
        args = typing.get_args(base)
        value_schema = (
            {"type": _SCALARS[args[1]][0]}
            if args and args[1] in _SCALARS
            else {"type": ["integer", "number", "string", "boolean", "null"]}
        )
        value_schema.update(_schema_bounds(meta))
        schema["additionalProperties"] = value_schema
        if meta.get("min_items") is not None:
            schema["minProperties"] = meta["min_items"]
    if meta.get("choices") is not None and "enum" not in schema:
        schema["enum"] = list(meta["choices"])
    if meta.get("pattern") is not None:
        schema["pattern"] = "^" + meta["pattern"] + "$"
    if optional and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    return schema
