"""The embedded synthetic multi-centre HCC cohort with known truth (docs/design.md §5,
docs/synthetic_cohort.md).

:func:`write_center` (:mod:`mtnet.synth.center`) writes one centre as a hospital would
deliver it, with its ground truth; :func:`draw_center_table` (:mod:`mtnet.synth.model`)
draws a centre's table without images. Both load on first use, so that ``mtnet --help``
does not import NumPy.
"""

_LAZY = {
    "write_center": "mtnet.synth.center",
    "min_diameter_mm": "mtnet.synth.center",
    "draw_center_table": "mtnet.synth.model",
    "center_preset": "mtnet.synth.presets",
}
__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtnet.synth' has no attribute {name!r}")
