"""Statistics of paper section 2.8 with two engines (R through rpy2, and Python).

Public API (each takes ``engine="r"`` or ``engine="python"``): :func:`auc_ci`,
:func:`delong_test`, :func:`delong_test_unpaired`, :func:`nri`, :func:`idi`,
:func:`calibration`, :func:`net_benefit`, :func:`youden_threshold`, :func:`km_logrank`,
:func:`cox_hr`, :func:`baseline_table`. Workflow entry points:
:func:`mtnet.stats.analyses.evaluate_center`, :func:`mtnet.stats.table1.write_table1`.
"""

from mtnet.stats.api import (
    DegenerateInput,
    auc_ci,
    calibration,
    cox_hr,
    delong_test,
    delong_test_unpaired,
    idi,
    km_logrank,
    net_benefit,
    nri,
    youden_threshold,
)
from mtnet.stats.table1 import baseline_table

__all__ = [
    "DegenerateInput",
    "auc_ci",
    "baseline_table",
    "calibration",
    "cox_hr",
    "delong_test",
    "delong_test_unpaired",
    "idi",
    "km_logrank",
    "net_benefit",
    "nri",
    "youden_threshold",
]
