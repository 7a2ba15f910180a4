"""The same patient twice? Content fingerprints across centers (rule ``identity``).

Ingestion writes ``fingerprints.tsv`` per center: the SHA-256 of each ingested image's voxels
(and spacing; not its origin or any header) and of its canonical clinical row. A training
patient re-delivered under another path as an external patient makes the external AUC a
training AUC; two patient IDs with one image are a mix-up. :func:`check_center` compares a
center's patients with each other and with every training center's (a training center with
the other training centers), and reports each pair. A pair is an error naming both, or a
warning (``ingest.checks.identity.action: warn``, for a deliberate test); clinical rows are
compared only when they hold ``min_clinical_fields`` non-missing fields (a sparse row
matches by chance).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from mtnet.errors import InputError
from mtnet.tables import read_tsv, write_tsv

log = logging.getLogger(__name__)
IDENTITY_COLUMNS = ["patient_id", "match", "other_center", "other_patient", "other_role"]


def _fingerprints(path) -> pd.DataFrame:
    return read_tsv(path, required=("patient_id", "image_sha256", "clinical_sha256",
                                    "clinical_fields"), what="fingerprints table")


def find_duplicates(center: str, own: pd.DataFrame, others: dict[str, tuple[str, pd.DataFrame]],
                    min_fields: int) -> pd.DataFrame:
    """Pairs of identical patients: within ``own`` and between ``own`` and each of ``others``
    ({center: (role, fingerprints)})."""
    rows = []
    comparable = own["clinical_fields"] >= min_fields
    for _, group in own.groupby("image_sha256", sort=False):
        ids = sorted(group["patient_id"])
        rows += [(pid, "image", center, ids[0], "same center") for pid in ids[1:]]
    for other, (role, theirs) in others.items():
        image = dict(zip(theirs["image_sha256"], theirs["patient_id"]))
        ok = theirs["clinical_fields"] >= min_fields
        clinical = dict(zip(theirs.loc[ok, "clinical_sha256"], theirs.loc[ok, "patient_id"]))
        for pid, img, cl, fine in zip(own["patient_id"], own["image_sha256"], own["clinical_sha256"],
                                      comparable):
            same_image, same_row = img in image, bool(fine) and cl in clinical
            if same_image or same_row:
                match = ("image and clinical row" if same_image and same_row
                         else "image" if same_image else "clinical row")
                rows.append((pid, match, other, image.get(img) or clinical.get(cl), role))
    return pd.DataFrame(rows, columns=IDENTITY_COLUMNS)


def check_center(center: str, role: str, own_path, others: dict[str, tuple[str, str]], output,
                 settings: dict) -> pd.DataFrame:
    """Compare a center's fingerprints (module docstring); write the pairs to ``output`` unless
    one is an error."""
    checks = settings["checks"]["identity"]
    own = _fingerprints(own_path)
    theirs = {c: (r, _fingerprints(p)) for c, (r, p) in others.items()}
    pairs = find_duplicates(center, own, theirs, int(checks["min_clinical_fields"]))
    messages = [_message(center, role, row) for row in pairs.itertuples(index=False)]
    if messages and checks["action"] == "error":
        for m in messages[1:]:
            log.error("%s", m)
        first = messages[0]
        more = f" (and {len(messages) - 1} more pair(s), in the log)" if len(messages) > 1 else ""
        raise InputError(first.problem + more, center=center, patient=first.patient, fix=first.fix)
    for m in messages:
        log.warning("%s", m)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    write_tsv(pairs, output)
    return pairs


def _message(center: str, role: str, row) -> InputError:
    same = ("the ingested image equals that" if row.match == "image"
            else "the clinical row equals that" if row.match == "clinical row"
            else "the ingested image and the clinical row equal those")
    if row.other_role == "same center":
        where = f"patient {row.other_patient} of the same center"
        why = "one image under two patient IDs?"
    else:
        where = f"patient {row.other_patient} of training center {row.other_center}"
        why = ("a training patient re-delivered as an external one?" if role == "external"
               else "one patient in two training centers?")
    return InputError(f"{same} of {where} ({why})", center=center,
                      patient=row.patient_id,
                      fix="remove the duplicate from the delivery, or set "
                          "ingest.checks.identity.action: warn for a deliberate test")
