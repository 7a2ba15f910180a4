"""The pyradiomics parameters file: validation (pyradiomics' own schema), hash, extractors."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from mtnet.errors import InputError

# the classes left out for the peritumoral ring: its shape is the lesion's plus the liver's edge
RING_EXCLUDED_CLASSES = ("shape", "shape2D")
REGIONS = ("lesion", "ring")


def params_sha256(path) -> str:
    """sha256 of the parameters file's bytes (the sidecar records it)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _one_line(text: str) -> str:
    lines = [ln.strip(" -") for ln in str(text).splitlines() if ln.strip(" -")]
    if lines and lines[0].startswith("Schema validation failed"):
        lines = lines[1:]
    return "; ".join(lines)


def make_extractor(path, region: str = "lesion"):
    """A pyradiomics ``RadiomicsFeatureExtractor`` for ``region`` from a parameters file.

    The file is validated by pyradiomics (pykwalify against its paramSchema.yaml, plus its
    checks of feature classes, image types, wavelets and interpolators); any problem is an
    :class:`InputError` of one line naming the file. The ring extractor is the same
    without the shape classes (:data:`RING_EXCLUDED_CLASSES`).
    """
    import pykwalify.core
    from radiomics import featureextractor

    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, not {region!r}")
    path = Path(path)
    if not path.is_file():
        raise InputError("radiomics parameters file not found", path=path,
                         fix="point features.params to a pyradiomics parameters file")
    fix = "correct the file (pyradiomics' parameter documentation lists the settings)"
    quiet = pykwalify.core.log.disabled
    pykwalify.core.log.disabled = True  # it logs every schema error before raising
    try:
        extractor = featureextractor.RadiomicsFeatureExtractor(str(path))
    except Exception as err:  # pykwalify SchemaError, ValueError/TypeError of the checks, YAML errors
        problem = getattr(err, "msg", None) or str(err)
        raise InputError(f"invalid radiomics parameters: {_one_line(problem)}", path=path,
                         fix=fix) from None
    finally:
        pykwalify.core.log.disabled = quiet
    settings = extractor.settings
    if int(settings.get("label", 1)) != 1:
        raise InputError(f"setting label is {settings['label']}, but the masks are 0/1",
                         path=path, fix="set label: 1 (or leave it out)")
    spacing = settings.get("resampledPixelSpacing")
    if spacing is not None and (len(spacing) != 3 or min(spacing) <= 0):
        raise InputError(f"resampledPixelSpacing {spacing} is not three positive spacings (x, y, z)",
                         path=path, fix="give three values in mm, e.g. [2.0, 2.0, 2.0]")
    if region == "ring":
        for name in RING_EXCLUDED_CLASSES:
            extractor.enabledFeatures.pop(name, None)
    logging.getLogger("radiomics").setLevel(logging.WARNING)
    return extractor


def validate_params(path) -> dict:
    """Validate a parameters file; its image types, feature classes and settings as pyradiomics
    reads them (the ring's are the same less :data:`RING_EXCLUDED_CLASSES`)."""
    ex = make_extractor(path, "lesion")
    return {
        "imageType": {k: dict(v) for k, v in ex.enabledImagetypes.items()},
        "featureClass": {k: (list(v) if v else None) for k, v in ex.enabledFeatures.items()},
        "setting": {k: v for k, v in ex.settings.items()},
    }
