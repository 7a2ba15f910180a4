"""Issue 11, "nothing wrong gets through": one test per case of the issue, each on a copy of a
`tiny` synthetic center's delivery damaged as a hospital delivered it. Each asserts the
message (the delivered file, the patient, the fix) and that the damaged delivery's other
patients come out exactly as from the clean copy.

The other cases of the issue are tested where their code lives: the clinical mapping and
units in tests/test_ingest_clinical.py, caching and the identity of patients across centers
in tests/test_ingest_caching.py, interrupted runs in tests/test_resume.py.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import tiny_delivery as td
from conftest import REPO, VENV_BIN, workflow_env

from mtnet.liver import classical, qc, segment_center

BAD = "TX-0001"


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The tiny center TX (NIfTI images and masks) and its clean ingestion."""
    root = tmp_path_factory.mktemp("harden")
    data = td.generate(root, "TX")
    outcome = td.ingest(td.copy(data, root, "CLEAN"), root, "CLEAN")
    assert outcome.error is None and outcome.exclusions.empty
    assert (outcome.qc.checks == "ok").all() and (outcome.qc.orientation == "ok").all()
    return root, data, outcome


def damaged(clean, name, damage, **settings):
    root, data, reference = clean
    copy = td.copy(data, root, name)
    damage(copy)
    return copy, td.ingest(copy, root, name, **settings), reference


def others_unchanged(outcome, reference, bad=(BAD,)):
    kept = [p for p in reference.clinical.patient_id if p not in bad]
    assert sorted(outcome.clinical.patient_id) == kept
    for pid in kept:
        assert outcome.digest(pid) == reference.digest(pid), pid


def excluded_for(outcome, path, problem, fix):
    assert outcome.error is None, outcome.error
    reason = outcome.reason(BAD)
    assert reason.startswith(f"{path}: "), reason
    assert problem in reason and f"(fix: {fix}" in reason, reason
    return reason


# ------------------------------------------------------------------ images


def test_a_nifti_cut_to_half_its_bytes_is_refused(clean):
    def cut(copy):
        path = td.image_path(copy, BAD)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    copy, outcome, reference = damaged(clean, "HALF", cut)
    excluded_for(outcome, td.image_path(copy, BAD), "the gzip stream ends early: the file was cut "
                 "short", "deliver the complete file again")
    others_unchanged(outcome, reference)
    # the same, uncompressed: the header's promise against the file's size
    def cut_nii(copy):
        gz = td.image_path(copy, BAD)
        img = sitk.ReadImage(str(gz))
        gz.unlink()
        nii = gz.with_suffix("")  # TX-0001.nii
        sitk.WriteImage(img, str(nii), False)
        nii.write_bytes(nii.read_bytes()[: nii.stat().st_size // 2])

    copy, outcome, _ = damaged(clean, "HALFNII", cut_nii)
    reason = outcome.reason(BAD)
    assert "the file is shorter than its header says (Expected" in reason and "a copy cut short" in reason
    # with on_bad_patient: error the center fails on it, in one line naming patient and file
    _, outcome, _ = damaged(clean, "HALFERR", cut, on_bad_patient="error")
    assert str(outcome.error).startswith(f"center HALFERR, patient {BAD}, ")
    assert "the gzip stream ends early" in str(outcome.error)


def test_a_nan_block_is_refused_or_read_as_air(clean):
    def nan(copy):
        td.rewrite(td.image_path(copy, BAD), lambda a: np.where(
            np.indices(a.shape)[0] < 3, np.nan, a), dtype=np.float32)

    copy, outcome, reference = damaged(clean, "NAN", nan)
    excluded_for(outcome, td.image_path(copy, BAD), "voxel(s) are NaN or infinite",
                 "export the image without NaN")
    others_unchanged(outcome, reference)
    copy, outcome, _ = damaged(clean, "NANWARN", nan, checks={"nonfinite": "warn"})
    row = outcome.qc[outcome.qc.patient_id == BAD].iloc[0]
    assert "nonfinite" in row.checks and "read as air (-1024 HU)" in row.warnings
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(outcome.out / "images" / f"{BAD}.nii.gz")))
    assert image[:2].max() == -1024  # the NaN slices (5 mm) became air, never 0 HU


def test_raw_stored_values_are_named_as_such(clean):
    copy, outcome, reference = damaged(clean, "RAW", lambda c: td.rewrite(
        td.image_path(c, BAD), lambda a: a.astype(np.int32) + 1024, dtype=np.int16))
    excluded_for(outcome, td.image_path(copy, BAD), "the values look like stored values without "
                 "the RescaleIntercept (HU + 1024)", "deliver HU")
    others_unchanged(outcome, reference)


def test_an_spl_array_under_an_ras_header_is_refused(clean):
    """Public datasets deliver NumPy's (z, y, x) = (S, P, L) array saved under an RAS header."""
    def spl(copy):
        path = td.image_path(copy, BAD)
        img = sitk.ReadImage(str(path))
        arr = sitk.GetArrayFromImage(img)  # (S, P, L)
        out = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
        out.SetSpacing(img.GetSpacing())
        out.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))  # RAS, as ITK says it
        sitk.WriteImage(out, str(path), True)

    copy, outcome, reference = damaged(clean, "SPL", spl)
    reason = excluded_for(outcome, td.image_path(copy, BAD), "orientation implausible for the "
                          "declared axes", "fix the image's header")
    assert "axes z and x look swapped (an array stored (S, P, L) under an RAS or LPS header?)" in reason
    others_unchanged(outcome, reference)


@pytest.mark.parametrize("flip, text", [
    (lambda a: a[:, ::-1], "the spine lies in the front of the body"),
    (lambda a: a[::-1], "the lung bases lie at the inferior end of the scan"),
    (lambda a: a.transpose(0, 2, 1), "axes x and y look swapped"),
])
def test_flipped_or_swapped_axes_are_named(clean, flip, text):
    def damage(copy):  # the array's axes changed, the header kept: the mask changed alike
        for path in (td.image_path(copy, BAD), td.mask_path(copy, BAD)):
            img = sitk.ReadImage(str(path))
            out = sitk.GetImageFromArray(np.ascontiguousarray(flip(sitk.GetArrayFromImage(img))))
            out.SetOrigin(img.GetOrigin())
            out.SetSpacing(img.GetSpacing())  # x and y spacings are equal in the tiny preset
            sitk.WriteImage(out, str(path), True)

    copy, outcome, reference = damaged(clean, "FLIP", damage)
    reason = outcome.reason(BAD)
    assert reason.startswith(f"{td.image_path(copy, BAD)}: orientation implausible") and text in reason
    others_unchanged(outcome, reference)


# ------------------------------------------------------------------ masks


@pytest.mark.parametrize("label", [2, 255])
def test_a_mask_labelled_otherwise_than_1_is_taken_with_a_warning(clean, label):
    copy, outcome, reference = damaged(clean, f"L{label}", lambda c: td.rewrite(
        td.mask_path(c, BAD), lambda a: a * label, dtype=np.uint8))
    assert outcome.exclusions.empty
    row = outcome.qc[outcome.qc.patient_id == BAD].iloc[0]
    assert row.tumor_labels == f"0,{label}"
    assert (f"{BAD}.nii.gz: tumor mask labelled 0/{label}: label {label} taken as the tumor "
            f"(set the center's tumor_label: {label} to confirm)") in row.warnings
    assert outcome.digest(BAD)["tumor"] == reference.digest(BAD)["tumor"]  # the same mask
    others_unchanged(outcome, reference, bad=())
    # configured: no warning
    td.set_entry(copy, tumor_label=label)
    again = td.ingest(copy, clean[0], f"L{label}C")
    assert again.qc[again.qc.patient_id == BAD].warnings.iloc[0] == ""


def test_several_labels_need_tumor_label(clean):
    def two(copy):
        def relabel(a):
            a = a.astype(np.uint8)
            z = np.indices(a.shape)[0]
            return np.where(a > 0, np.where(z % 2 == 0, 1, 2), 0)
        td.rewrite(td.mask_path(copy, BAD), relabel, dtype=np.uint8)

    copy, outcome, reference = damaged(clean, "TWO", two)
    excluded_for(outcome, td.mask_path(copy, BAD), "tumor mask holds several labels (1, 2): which "
                 "is the tumor?", "set the center's tumor_label")
    others_unchanged(outcome, reference)
    td.set_entry(copy, tumor_label=2)  # the center's label of the tumor, for every mask
    again = td.ingest(copy, clean[0], "TWO2")
    assert again.qc.patient_id.tolist() == [BAD] and again.qc.tumor_labels[0] == "0,1,2"
    assert (again.exclusions.reason.str.contains("tumor_label 2 is not in the mask (labels found: 1)",
                                                  regex=False)).all()


def test_an_empty_mask_excludes_its_patient_not_the_center(clean, tmp_path):
    copy, outcome, reference = damaged(clean, "EMPTY", lambda c: td.rewrite(
        td.mask_path(c, BAD), np.zeros_like, dtype=np.uint8))
    excluded_for(outcome, td.mask_path(copy, BAD), "tumor mask is empty (no non-zero voxel)",
                 "supply the tumor segmentation, or remove the patient from the delivery")
    others_unchanged(outcome, reference)


# ------------------------------------------------------------------ the liver QC


def test_the_liver_qc_reports_the_backend_s_own_dice_before_the_join(clean):
    """A tumor at the liver's edge: the classical backend leaves part of it out; the join
    adds it back. The QC shows both the written mask's Dice and the backend's own."""
    root, data, reference = clean
    out = root / "liver"
    inputs = {"images": str(reference.out / "images"), "tumor": str(reference.out / "tumor"),
              "provided": str(reference.out / "liver"), "truth": str(root / "TX" / "truth")}
    outputs = {"masks": str(out / "masks"), "qc": str(out / "qc.tsv"), "montage": str(out / "m.png")}
    table = segment_center("CLEAN", "classical", inputs, outputs, {})
    assert list(table.columns) == qc.QC_COLUMNS
    for row in table.itertuples():
        image = sitk.ReadImage(str(reference.out / "images" / f"{row.patient_id}.nii.gz"))
        own = sitk.GetArrayFromImage(classical.segment(image, work_spacing_mm=3.0)).astype(bool)
        tumor = sitk.GetArrayFromImage(sitk.ReadImage(
            str(reference.out / "tumor" / f"{row.patient_id}.nii.gz"))).astype(bool)
        truth = sitk.GetArrayFromImage(sitk.Resample(
            sitk.ReadImage(str(root / "TX" / "truth" / "liver_masks" / f"{row.patient_id}.nii.gz")),
            image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)).astype(bool)
        assert row.dice_backend == round(qc.dice(own, truth), 4)
        assert row.tumor_outside_backend == round(float((tumor & ~own).sum() / tumor.sum()), 4)
        written = sitk.GetArrayFromImage(sitk.ReadImage(
            str(out / "masks" / f"{row.patient_id}.nii.gz"))).astype(bool)
        assert row.tumor_outside == round(float((tumor & ~written).sum() / tumor.sum()), 4)
        assert row.tumor_outside <= row.tumor_outside_backend
    # at least one patient of the tiny center has part of its tumor outside the backend's mask
    assert (table.tumor_outside_backend > table.tumor_outside).any()
    assert (table.tumor_joined > 0).any()


# ------------------------------------------------------------------ the command line


def mtnet(*args):
    return subprocess.run([str(VENV_BIN / "mtnet"), *map(str, args)], capture_output=True, text=True,
                          env=workflow_env(), cwd=REPO, timeout=300)


def test_mtnet_ingest_without_masks_says_how_to_supply_them(clean):
    root, data, _ = clean
    copy = td.copy(data, root, "NOMASKS")
    for f in (copy / td.entry(copy)["tumor_masks"]).iterdir():
        f.unlink()
    result = mtnet("ingest", "--data", copy, "--center", "NOMASKS", "--out", root / "nm")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: center NOMASKS, ") and "Traceback" not in result.stderr
    assert "tumor masks are missing: none of the 4 patient(s) has one in the tumor_masks folder " \
           "(looked for TX-0001.nii.gz; it is empty)" in last
    assert "(fix: MTnet needs one tumor mask per patient: put <patient_id>.nii.gz files" in last
    td.set_entry(copy, tumor_masks=None)  # no folder named at all
    result = mtnet("ingest", "--data", copy, "--center", "NOMASKS", "--out", root / "nm")
    assert result.returncode == 2
    assert "tumor masks are missing: the delivery names no tumor_masks folder (fix: MTnet needs " \
           "one tumor mask per patient" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("args, text", [
    (["synth", "--preset", "tiny", "--center", "Q", "--role", "train", "--out", "{tmp}/q",
      "--image-format", "nifti", "--tumor-mask-format", "dicom-seg"],
     "error: center Q: synthetic tumor_mask_format dicom-seg needs DICOM images"),
    (["synth", "--preset", "tiny", "--center", "Q", "--role", "train", "--out", "/proc/q"],
     "error: "),
    (["config", "{tmp}/absent.yaml"], "error: No such file or directory: {tmp}/absent.yaml"),
    (["ingest", "--data", "{tmp}", "--center", "Q", "--out", "{tmp}/o"],
     "error: center Q, {tmp}: no center.yaml in the data folder"),
])
def test_every_subcommand_ends_an_input_error_with_one_line(tmp_path, args, text):
    result = mtnet(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(text.format(tmp=tmp_path))


# ------------------------------------------------------------------ through the workflow


@pytest.mark.slow
def test_damaged_hospitals_in_one_run_leave_the_clean_center_as_it_was(clean, tmp_path):
    """One snakemake run with a clean training hospital (tiny TA) and four damaged external
    ones (--keep-going): a cut NIfTI and an (S, P, L) array exclude their patients, a
    semicolon table and the training center re-delivered as external fail their centers
    alone, each with its one-line reason; the clean center's ingested files equal its
    ingestion alone."""
    import yaml
    from conftest import run_snakemake

    root, data, _ = clean
    ta = td.generate(tmp_path / "gen", "TA", role="train", image_format="nifti",
                     tumor_mask_format="nifti")
    alone = td.ingest(td.copy(ta, tmp_path, "TA-alone"), tmp_path, "TA-alone")
    assert alone.error is None and alone.exclusions.empty

    def hospital(name, role, source, damage=None):
        copy = td.copy(source, tmp_path, name)
        if damage:
            damage(copy)
        entry = td.entry(copy)
        for key in ("images", "tumor_masks", "liver_masks", "clinical"):
            if key in entry:
                entry[key] = str(copy / entry[key])
        return {"role": role, **entry}

    def cut(copy):
        path = td.image_path(copy, BAD)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    def spl(copy):
        path = td.image_path(copy, BAD)
        img = sitk.ReadImage(str(path))
        out = sitk.GetImageFromArray(np.ascontiguousarray(sitk.GetArrayFromImage(img).transpose(2, 1, 0)))
        out.SetSpacing(img.GetSpacing())
        out.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
        sitk.WriteImage(out, str(path), True)

    def semicolons(copy):
        td.write_csv(copy, td.read_table(copy), sep=";")

    centers = {"CLEAN": hospital("CLEAN", "train", ta),
               "CUT": hospital("CUT", "external", data, cut),
               "SPL": hospital("SPL", "external", data, spl),
               "SEMI": hospital("SEMI", "external", data, semicolons),
               "AGAIN": hospital("AGAIN", "external", ta)}
    config = tmp_path / "hospitals.yaml"
    config.write_text(yaml.safe_dump({"seed": 1, "centers": centers,
                                      "ingest": {"spacing_mm": td.SPACING}}))
    work = tmp_path / "work"
    work.mkdir()
    targets = [f"results/ingest/{c}/identity.tsv" for c in centers]
    result = run_snakemake(["--cores", "2", "--keep-going", "--replace-workflow-config", *targets],
                           work, timeout=900, configfiles=[config])
    assert result.returncode != 0
    ingest = work / "results" / "ingest"
    logs = work / "results" / "logs"
    for name, text in (("CUT", "the gzip stream ends early"), ("SPL", "axes z and x look swapped")):
        reason = pd.read_csv(ingest / name / "exclusions.tsv", sep="\t").set_index("patient_id").reason
        assert reason[BAD].startswith(f"{tmp_path / name / 'data' / 'images' / BAD}.nii.gz: ")
        assert text in reason[BAD]
        assert (ingest / name / "identity.tsv").exists()
    semi = (logs / "ingest" / "SEMI.log").read_text()
    assert "center SEMI, " in semi and "its header is semicolon-separated" in semi
    assert not (ingest / "SEMI" / "clinical.tsv").exists()
    assert ("center AGAIN, patient TA-0001: the ingested image and the clinical row equal those "
            "of patient TA-0001 of training center CLEAN") in (logs / "identity" / "AGAIN.log").read_text()
    assert not (ingest / "AGAIN" / "identity.tsv").exists()
    in_run = td.Outcome(None, ingest / "CLEAN")
    for pid in alone.clinical.patient_id:
        assert in_run.digest(pid) == alone.digest(pid), pid
    assert (ingest / "CLEAN" / "identity.tsv").exists()
