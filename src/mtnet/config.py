"""Workflow configuration: loading, schema validation with one-line messages, defaults.

A hospital ("center") is one entry under ``centers:``; nothing else in the code names a
center. :func:`validate_config` is what the Snakefile calls; :func:`load_config` is the same
for Python callers (CLI, tests) that start from YAML files.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

# packaged with mtnet, so an installed package validates like a checkout
SCHEMA_PATH = Path(__file__).with_name("schemas") / "config.schema.yaml"
ROLES = ("train", "external")
# the pooled training centers as evaluated: out-of-fold risks, and the apparent (in-sample) ones
POOLED_TRAIN = "pooled_train"
POOLED_TRAIN_APPARENT = "pooled_train_apparent"
POOLED = {POOLED_TRAIN: "oof", POOLED_TRAIN_APPARENT: "apparent"}
# under leave-one-center-out: every center's held-out predictions, pooled
POOLED_LOCO = "pooled_loco"
LOCO = "leave-one-center-out"


class ConfigError(ValueError):
    """A configuration problem, phrased as one line that names the offending key."""


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicated mapping keys (PyYAML silently keeps the last)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep=False):
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"{loader.name}: line {key_node.start_mark.line + 1}: duplicated key "
                f"'{key}' (first at line {seen[key].start_mark.line + 1}); "
                f"each center and setting may appear once"
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def read_yaml(path: str | Path) -> Any:
    """Read YAML, rejecting duplicated keys with a message naming the file and line."""
    path = Path(path)
    with path.open() as fh:
        loader = _UniqueKeyLoader(fh)
        loader.name = str(path)
        try:
            return loader.get_single_data()
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
        finally:
            loader.dispose()


def check_files(paths: Iterable[str | Path]) -> None:
    """Re-read config files for problems the YAML loader of Snakemake hides (duplicated keys)."""
    for path in paths:
        read_yaml(path)


def load_config(
    *paths: str | Path, overrides: Mapping | None = None, base_dir: str | Path | None = None
) -> dict:
    """Merge YAML files (later win, like ``snakemake --configfile a b``), validate, fill defaults."""
    config: dict = {}
    for path in paths:
        data = read_yaml(path) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a configuration must be a mapping of keys")
        _deep_update(config, data)
    if overrides:
        _deep_update(config, copy.deepcopy(dict(overrides)))
    return validate_config(config, base_dir=base_dir)


def _deep_update(target: dict, source: Mapping) -> None:
    for key, value in source.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


# --------------------------------------------------------------------------- validation


@functools.lru_cache(maxsize=4)
def _schema(path: str) -> dict:
    return read_yaml(path)


def schema_enum(*keys: str) -> list:
    """The allowed values of a center entry's setting (``("synthetic", "preset")``)."""
    node = _schema(str(SCHEMA_PATH))["$defs"]["center"]
    for key in keys:
        node = node["properties"][key]
    return list(node["enum"])


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The config schema (a fresh copy: validation fills defaults into what it is given)."""
    return copy.deepcopy(_schema(str(path)))


def _with_defaults(validator_class):
    """jsonschema's documented recipe: fill ``default`` of absent properties while validating."""
    import jsonschema

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


@functools.lru_cache(maxsize=1)
def _defaulting_validator():
    import jsonschema

    return _with_defaults(jsonschema.Draft202012Validator)


def _DefaultingValidator(schema):
    return _defaulting_validator()(schema)


def _key_path(error) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _one_line(error) -> str:
    where = _key_path(error)
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        hint = REQUIRED_HINTS.get(missing)
        return f"config: {where}: missing required key '{missing}'" + (f" ({hint})" if hint else "")
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"config: {where}: unknown key {', '.join(map(repr, extra))} (allowed: {', '.join(allowed)})"
    if "propertyNames" in error.absolute_schema_path:
        bad = error.instance
        return (
            f"config: {where}: invalid name {bad!r} (letters, digits, '_' and '-', starting "
            f"with a letter, at most 32 characters; {', '.join(map(repr, [*POOLED, POOLED_LOCO]))} "
            "are reserved)"
        )
    if kind == "enum":
        return f"config: {where}: {error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if kind == "minProperties" and where == "centers":
        return "config: centers: no center configured"
    return f"config: {where}: {error.message}"


# what a missing key of a delivery means, said where its absence is reported
REQUIRED_HINTS = {
    "tumor_masks": "tumor masks are missing: MTnet needs one per patient; put <patient_id>.nii.gz "
                   "files (or DICOM-SEG <patient_id>.dcm with tumor_mask_format: dicom-seg) in a "
                   "folder and name it in tumor_masks",
}


def _first_error(errors: list):
    # Deepest, most specific error first: it names the key a user has to fix.
    return sorted(errors, key=lambda e: (-len(e.absolute_path), str(list(e.absolute_path))))[0]


def validate_config(
    config: dict, schema_path: str | Path = SCHEMA_PATH, base_dir: str | Path | None = None
) -> dict:
    """Validate ``config`` in place (defaults filled) and return it.

    Raises :class:`ConfigError` with a one-line message naming the key: unknown role,
    missing or non-existent path, duplicated center, no training center, no external
    center, unknown preset, unknown key. Relative paths are resolved against ``base_dir``
    (default: the current directory, which is Snakemake's working directory).
    """
    if not isinstance(config, dict):
        raise ConfigError("config: a configuration must be a mapping of keys")
    validator = _DefaultingValidator(load_schema(schema_path))
    errors = list(validator.iter_errors(config))
    if errors:
        err = _first_error(errors)
        # a failed `allOf/if/then` reports on the center; its sub-errors name the key
        if err.context:
            err = _first_error(list(err.context))
        raise ConfigError(_one_line(err))
    _check_centers(config["centers"], Path(base_dir) if base_dir else Path.cwd())
    _check_models(config["models"])
    return config


def section(name: str, values: Mapping | None = None, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """One section of the config (``ingest``, ``tumor``, ``stats``...) validated against its
    part of the schema, with the schema's defaults filled: what a stage gets from the
    workflow, for callers that start from a partial dict (the CLI, tests)."""
    schema = load_schema(schema_path)
    if name not in schema["properties"]:
        raise ConfigError(f"config: no section {name!r} (one of {', '.join(schema['properties'])})")
    sub = dict(schema["properties"][name], **{"$defs": schema.get("$defs", {})})
    values = copy.deepcopy(dict(values or {}))
    errors = list(_DefaultingValidator(sub).iter_errors(values))
    if errors:
        err = _first_error(errors)
        text = _one_line(err).replace("config: (top level)", f"config: {name}", 1)
        raise ConfigError(text.replace("config: ", f"config: {name}.", 1) if text == _one_line(err) else text)
    return values


def center_validator(role: bool = True):
    """A validator of one center entry that fills its defaults; ``role=False`` for a data
    folder's center.yaml, which describes a delivery without a role."""
    schema = load_schema()
    sub = copy.deepcopy(schema["$defs"]["center"])
    if not role:
        sub["required"] = [k for k in sub["required"] if k != "role"]
    sub["$defs"] = schema["$defs"]
    return _DefaultingValidator(sub)


def _check_models(models: list) -> None:
    from mtnet.model import registry

    for name in models:
        if name not in registry.MODELS:
            raise ConfigError(
                f"config: models: {name!r} has no implementation (implemented: "
                f"{', '.join(registry.names())})"
            )


_FILE_KEYS = ("images", "tumor_masks", "liver_masks", "clinical", "clinical_mapping")
_FILES_ONLY_KEYS = _FILE_KEYS + (
    "image_format",
    "tumor_mask_format",
    "tumor_segment",
    "tumor_label",
    "liver_label",
    "clinical_sheet",
    "phase",
)


def _check_centers(centers: dict, base_dir: Path) -> None:
    lowered: dict[str, str] = {}
    for name in centers:
        if name.lower() in lowered:
            raise ConfigError(
                f"config: centers.{name}: duplicated center (same name as "
                f"'{lowered[name.lower()]}' apart from case; output folders would collide)"
            )
        lowered[name.lower()] = name

    roles = {c["role"] for c in centers.values()}
    if "train" not in roles:
        raise ConfigError("config: centers: no training center (at least one needs role: train)")
    if "external" not in roles:
        raise ConfigError("config: centers: no external center (at least one needs role: external)")

    used: dict[tuple[str, Path], str] = {}
    for name, center in centers.items():
        if center["source"] == "synthetic":
            clash = [k for k in _FILES_ONLY_KEYS if k in center]
            if clash:
                raise ConfigError(
                    f"config: centers.{name}.{clash[0]}: a synthetic center takes no "
                    f"'{clash[0]}' (its files are generated); use source: files"
                )
            continue
        if "synthetic" in center:
            raise ConfigError(
                f"config: centers.{name}.synthetic: only for source: synthetic"
            )
        for key in _FILE_KEYS:
            if key not in center:
                continue
            path = Path(center[key])
            resolved = path if path.is_absolute() else base_dir / path
            if not resolved.exists():
                raise ConfigError(
                    f"config: centers.{name}.{key}: path does not exist: {center[key]} "
                    f"(resolved against {base_dir})"
                )
            if key in ("images", "clinical"):
                real = resolved.resolve()
                if (key, real) in used:
                    raise ConfigError(
                        f"config: centers.{name}.{key}: duplicated center (same {key} as "
                        f"centers.{used[(key, real)]})"
                    )
                used[(key, real)] = name
        phase = center.get("phase", {})
        if "overrides" in phase:
            path = Path(phase["overrides"])
            if not (path if path.is_absolute() else base_dir / path).exists():
                raise ConfigError(
                    f"config: centers.{name}.phase.overrides: path does not exist: {phase['overrides']}"
                )
        if center.get("liver_backend") == "provided" and "liver_masks" not in center:
            raise ConfigError(
                f"config: centers.{name}.liver_backend: 'provided' needs liver_masks"
            )


# --------------------------------------------------------------------------- queries


def centers_by_role(config: Mapping, role: str) -> list[str]:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return [name for name, c in config["centers"].items() if c["role"] == role]


def train_centers(config: Mapping) -> list[str]:
    return centers_by_role(config, "train")


def external_centers(config: Mapping) -> list[str]:
    return centers_by_role(config, "external")


def liver_backend(config: Mapping, center: str) -> str:
    """The liver backend of a center: its own setting, else provided masks, else the default."""
    c = config["centers"][center]
    if "liver_backend" in c:
        return c["liver_backend"]
    if c["source"] == "files":
        return "provided" if "liver_masks" in c else config["liver"]["default_backend"]
    # synthetic centers: the generator writes liver masks for training centers only
    return "provided" if c["role"] == "train" else config["liver"]["default_backend"]


def export_package_path(src: str) -> None:
    """Put this checkout's ``src`` first on PYTHONPATH for the workflow's script jobs.

    Scripts inherit the environment (also in conda environments and on cluster nodes), so
    they import the same ``mtnet`` as the Snakefile, never another installed copy.
    """
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != src]
    os.environ["PYTHONPATH"] = os.pathsep.join([src, *rest])
