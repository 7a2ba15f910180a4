"""Errors a user can act on: one line naming the center, patient, file and what to fix."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input data. ``str(err)`` is a single line a user can act on.

    >>> str(InputError("slice 12 has another orientation", center="YPH",
    ...                patient="YPH-0003", path="ct/YPH-0003/IM12", fix="remove it"))
    'center YPH, patient YPH-0003, ct/YPH-0003/IM12: slice 12 has another orientation (fix: remove it)'
    """

    def __init__(self, problem: str, *, center=None, patient=None, path=None, column=None, fix=None):
        self.problem = problem
        self.center = center
        self.patient = patient
        self.path = None if path is None else str(path)
        self.column = column
        self.fix = fix
        where = [
            f"{label} {value}"
            for label, value in (("center", center), ("patient", patient), ("column", column))
            if value is not None
        ]
        if self.path is not None:
            where.append(self.path)
        text = f"{', '.join(where)}: {problem}" if where else problem
        if fix:
            text += f" (fix: {fix})"
        super().__init__(" ".join(text.split()))
