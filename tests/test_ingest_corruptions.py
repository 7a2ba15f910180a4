"""Forty-odd kinds of damage that real archives and tables show, each done to a copy of a
`tiny` synthetic center's delivery (two of its patients), each ending in a clear error or a
warned, documented repair, never accepted silently.

A case damages the first patient (or the table) and says what must come of it:
``excluded`` (that patient only, its reason naming the delivered file and the fix; the other
patient ingested exactly as from the clean copy), ``error`` (the center fails with one line
naming the center and the problem), or ``warned`` (accepted, the warning in qc.tsv, the
other patient unchanged). TX delivers NIfTI images and masks, TB DICOM series, DICOM-SEG
tumor masks, its own liver masks and an XLSX table.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
import tiny_delivery as td
import yaml
from pydicom.uid import generate_uid

from mtnet.io import identity

N = 2  # patients kept in each damaged copy


def subset(data, n=N):
    """Keep the first ``n`` patients of a delivery (files and table rows)."""
    table = td.read_table(data)
    keep = sorted(table.patient_id)[:n]
    e = td.entry(data)
    for key in ("images", "tumor_masks", "liver_masks"):
        if key not in e:
            continue
        for path in (data / e[key]).iterdir():
            if path.name.split(".")[0] not in keep:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    td.write_csv(data, table[table.patient_id.isin(keep)])
    return keep


@pytest.fixture(scope="module")
def centers(tmp_path_factory):
    root = tmp_path_factory.mktemp("corruptions")
    out = {}
    for name, role in (("TX", "external"), ("TB", "train")):
        data = td.copy(td.generate(root / "gen", name, role=role, n=4), root, f"{name}-clean")
        keep = subset(data)
        clean = td.ingest(data, root, f"{name}-clean")
        assert clean.error is None and clean.exclusions.empty, clean.error
        assert (clean.qc.checks == "ok").all()
        out[name] = (data, keep, clean)
    return root, out


# ------------------------------------------------------------------ damages


def nii(pid_index=0):
    def path(data, keep):
        return td.image_path(data, keep[pid_index])
    return path


def on_image(change, dtype=None):
    return lambda data, keep: td.rewrite(td.image_path(data, keep[0]), change, dtype)


def on_mask(change, dtype=np.uint8):
    return lambda data, keep: td.rewrite(td.mask_path(data, keep[0]), change, dtype)


def cut_bytes(fraction):
    def damage(data, keep):
        path = td.image_path(data, keep[0])
        path.write_bytes(path.read_bytes()[: int(path.stat().st_size * fraction)])
    return damage


def flip_bytes(data, keep):
    path = td.image_path(data, keep[0])
    blob = bytearray(path.read_bytes())
    middle = len(blob) // 2
    blob[middle: middle + 64] = bytes(b ^ 0xFF for b in blob[middle: middle + 64])
    path.write_bytes(bytes(blob))


def replace_file(content: bytes):
    def damage(data, keep):
        td.image_path(data, keep[0]).write_bytes(content)
    return damage


def uncompressed_cut(data, keep):
    gz = td.image_path(data, keep[0])
    img = sitk.ReadImage(str(gz))
    gz.unlink()
    nii_path = gz.with_suffix("")
    sitk.WriteImage(img, str(nii_path), False)
    nii_path.write_bytes(nii_path.read_bytes()[: nii_path.stat().st_size * 3 // 4])


def rewrite_image(build):
    """Replace the image by ``build(img)`` (a new SimpleITK image)."""
    def damage(data, keep):
        path = td.image_path(data, keep[0])
        sitk.WriteImage(build(sitk.ReadImage(str(path))), str(path), True)
    return damage


def axes(order, direction=None, both=False):
    """The array's axes permuted or flipped (``order``: a function of the (z, y, x) array) with
    the header kept, or ``direction`` set; ``both``: the mask changed alike."""
    def damage(data, keep):
        paths = [td.image_path(data, keep[0])] + ([td.mask_path(data, keep[0])] if both else [])
        for path in paths:
            img = sitk.ReadImage(str(path))
            out = sitk.GetImageFromArray(np.ascontiguousarray(order(sitk.GetArrayFromImage(img))))
            out.SetSpacing(img.GetSpacing())
            out.SetOrigin(img.GetOrigin())
            if direction:
                out.SetDirection(direction)
            sitk.WriteImage(out, str(path), True)
    return damage


def spacing_times(factor):
    def build(img):
        out = sitk.Image(img)
        out.SetSpacing([s * factor for s in img.GetSpacing()])
        return out
    return rewrite_image(build)


def as_4d(img):
    return sitk.JoinSeries([img, img])  # two time points


def as_rgb(img):
    arr = sitk.GetArrayFromImage(img).astype(np.uint8)
    return sitk.GetImageFromArray(np.stack([arr] * 3, axis=-1), isVector=True)


def as_2d(img):
    return sitk.GetImageFromArray(sitk.GetArrayFromImage(img)[10])


def mask_on_other_grid(data, keep):
    path = td.mask_path(data, keep[0])
    img = sitk.ReadImage(str(path))
    img.SetSpacing([s * 1.5 for s in img.GetSpacing()])
    sitk.WriteImage(img, str(path), True)


def mask_in_air(data, keep):
    """The lesion moved to the first rows (in front of the body): the mask of another image."""
    def move(a):
        out = np.zeros_like(a)
        out[:, :6, :20] = 1
        return out
    td.rewrite(td.mask_path(data, keep[0]), move, np.uint8)


def tiny_lesion(data, keep):
    def one(a):
        out = np.zeros_like(a)
        out[10, 40, 50] = 1
        return out
    td.rewrite(td.mask_path(data, keep[0]), one, np.uint8)


def remove_mask(data, keep):
    td.mask_path(data, keep[0]).unlink()


def rename_masks(data, keep):
    folder = data / td.entry(data)["tumor_masks"]
    for path in folder.iterdir():
        path.rename(folder / path.name.replace(".nii.gz", "_seg.nii.gz"))


def remove_image(data, keep):
    td.image_path(data, keep[0]).unlink()


def image_without_row(data, keep):
    shutil.copy(td.image_path(data, keep[1]), td.image_path(data, keep[1]).with_name("TX-0099.nii.gz"))


def liver_labels(data, keep):
    """A multi-organ segmentation delivered as the liver mask (TotalSegmentator-like)."""
    def organs(a):
        z = np.indices(a.shape)[0]
        return np.where(a > 0, 1 + z % 5, 0)
    td.rewrite(td.mask_path(data, keep[0], "liver"), organs, np.uint8)


def empty_liver(data, keep):
    td.rewrite(td.mask_path(data, keep[0], "liver"), np.zeros_like, np.uint8)


# DICOM damages (TB)


def slices(data, pid):
    folder = data / td.entry(data)["images"] / pid
    return sorted(folder.glob("S03_*.dcm"))


def truncate_slice(data, keep):
    path = slices(data, keep[0])[10]
    path.write_bytes(path.read_bytes()[:-2000])  # the pixel data cut short


def truncate_header(data, keep):
    path = slices(data, keep[0])[10]
    path.write_bytes(path.read_bytes()[:700])  # cut inside the header


def drop_slice(data, keep):
    slices(data, keep[0])[12].unlink()


def duplicate_slice(data, keep):
    path = slices(data, keep[0])[12]
    shutil.copy(path, path.with_name("COPY_OF_" + path.name))


def stray_orientation(data, keep):
    path = slices(data, keep[0])[5]
    ds = pydicom.dcmread(path)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(path.with_name("STRAY.dcm"))


def every_slice(change):
    def damage(data, keep):
        for path in slices(data, keep[0]):
            ds = pydicom.dcmread(path)
            change(ds)
            ds.save_as(path)
    return damage


def no_intercept(ds):
    ds.RescaleIntercept = 0


def slope_two(ds):
    ds.RescaleSlope = 2


def tilt(ds):
    ds.GantryDetectorTilt = 12.0


def second_portal_series(data, keep):
    series = generate_uid()
    for path in slices(data, keep[0]):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesNumber = 7
        ds.SeriesDescription = "PORTAL PHASE 2MM RECON"
        ds.save_as(path.with_name("S07_" + path.name))


def seg_of_other_series(data, keep):
    e = td.entry(data)
    masks = data / e["tumor_masks"]
    shutil.copy(masks / f"{keep[1]}.dcm", masks / f"{keep[0]}.dcm")


def truncate_seg(data, keep):
    path = data / td.entry(data)["tumor_masks"] / f"{keep[0]}.dcm"
    path.write_bytes(path.read_bytes()[:400])


# table damages (both centers' tables are CSV after subset())


def table(change):
    def damage(data, keep):
        df = td.read_table(data).astype(object)
        td.write_csv(data, change(df, keep))
    return damage


def cell(column, value, row=0):
    def change(df, keep):
        df.loc[df.patient_id == keep[row], column] = value
        return df
    return table(change)


def csv_as(**kw):
    def damage(data, keep):
        td.write_csv(data, td.read_table(data), **kw)
    return damage


def latin1(data, keep):
    df = td.read_table(data)
    df["location"] = "lobe droit près du hile"
    td.write_csv(data, df, encoding="latin-1")


def duplicated_row(df, keep):
    return pd.concat([df, df.iloc[[0]]], ignore_index=True)


def missing_id(df, keep):
    df.loc[0, "patient_id"] = None
    return df


def header_twice(df, keep):
    header = pd.DataFrame([dict(zip(df.columns, df.columns))])
    return pd.concat([df.iloc[[0]], header, df.iloc[[1]]], ignore_index=True)


def numeric_ids(df, keep):
    df["patient_id"] = [str(i + 1) for i in range(len(df))]
    return df


def with_mapping(mapping):
    def damage(data, keep):
        (data / "map.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False))
        td.set_entry(data, clinical_mapping="map.yaml")
    return damage


def then(*damages):
    def damage(data, keep):
        for d in damages:
            d(data, keep)
    return damage


IMG = "{image}"
MASK = "{mask}"
# (id, center, damage, settings, outcome, text, file)
CASES = [
    # --- NIfTI files
    ("gz cut at 90%", "TX", cut_bytes(0.9), {}, "excluded", "the gzip stream ends early", IMG),
    ("gz bytes flipped", "TX", flip_bytes, {}, "excluded", "the gzip stream is corrupt", IMG),
    ("empty file", "TX", replace_file(b""), {}, "excluded", "the file is empty (0 bytes)", IMG),
    ("not a NIfTI", "TX", replace_file(b"\x89PNG\r\n\x1a\n" + bytes(500)), {}, "excluded",
     "the gzip stream is corrupt (Not a gzipped file", IMG),
    (".nii cut short", "TX", uncompressed_cut, {}, "excluded", "the file is shorter than its header says", None),
    ("4D image", "TX", rewrite_image(as_4d), {}, "excluded", "expected a 3D single-channel image, got 4D", IMG),
    ("2D image", "TX", rewrite_image(as_2d), {}, "excluded", "expected a 3D single-channel image, got 2D", IMG),
    ("RGB image", "TX", rewrite_image(as_rgb), {}, "excluded", "expected a 3D single-channel image", IMG),
    # --- NIfTI values
    ("raw stored values", "TX", on_image(lambda a: a.astype(np.int32) + 1024, np.int16), {}, "excluded",
     "stored values without the RescaleIntercept (HU + 1024)", IMG),
    ("intercept applied twice", "TX", on_image(lambda a: a.astype(np.int32) - 1024, np.int16), {},
     "excluded", "shifted by -1024 HU (the RescaleIntercept applied twice?)", IMG),
    ("half the HU (slope 0.5)", "TX", on_image(lambda a: a // 2, np.int16), {}, "excluded",
     "HU implausible for a contrast CT: no air", IMG),
    ("probability map as CT", "TX", on_image(lambda a: (a > 0).astype(np.float32) * 0.9, np.float32),
     {}, "excluded", "HU implausible for a contrast CT: no air", IMG),
    ("NaN block", "TX", on_image(lambda a: np.where(np.indices(a.shape)[1] < 8, np.nan, a), np.float32),
     {}, "excluded", "voxel(s) are NaN or infinite", IMG),
    ("infinite voxels", "TX", on_image(lambda a: np.where(np.indices(a.shape)[2] < 4, np.inf, a),
                                       np.float32), {}, "excluded", "voxel(s) are NaN or infinite", IMG),
    ("NaN block read as air", "TX", on_image(lambda a: np.where(np.indices(a.shape)[1] < 8, np.nan, a),
                                             np.float32), {"checks": {"nonfinite": "warn"}}, "warned",
     "; read as air (-1024 HU)", None),
    # --- NIfTI geometry
    ("(S, P, L) under RAS", "TX", axes(lambda a: a.transpose(2, 1, 0), (-1, 0, 0, 0, -1, 0, 0, 0, 1)),
     {}, "excluded", "axes z and x look swapped", IMG),
    ("A-P flipped", "TX", axes(lambda a: a[:, ::-1], both=True), {}, "excluded",
     "the spine lies in the front of the body", IMG),
    ("S-I flipped", "TX", axes(lambda a: a[::-1], both=True), {}, "excluded",
     "the lung bases lie at the inferior end", IMG),
    ("x and y transposed", "TX", axes(lambda a: a.transpose(0, 2, 1), both=True), {}, "excluded",
     "axes x and y look swapped", IMG),
    ("coronal stored as axial", "TX", axes(lambda a: a.transpose(1, 0, 2)), {}, "excluded",
     "axes z and y look swapped", IMG),
    ("spacing in cm", "TX", spacing_times(0.1), {}, "excluded", "implausible body width", IMG),
    ("spacing x 10", "TX", spacing_times(10), {}, "excluded", "implausible body width", IMG),
    ("orientation accepted by warning", "TX", axes(lambda a: a[:, ::-1], both=True),
     {"checks": {"orientation": {"action": "warn"}}}, "warned", "orientation: orientation implausible", None),
    # --- tumor masks
    ("mask on another grid", "TX", mask_on_other_grid, {}, "excluded", "tumor mask is not on the image grid", MASK),
    ("mask in air", "TX", mask_in_air, {}, "excluded", "of the tumor mask lies in air", MASK),
    ("mask labelled 0/255", "TX", on_mask(lambda a: a * 255), {}, "warned",
     "tumor mask labelled 0/255: label 255 taken as the tumor", None),
    ("mask labelled 0/2", "TX", on_mask(lambda a: a * 2), {}, "warned",
     "tumor mask labelled 0/2: label 2 taken as the tumor", None),
    ("mask with labels 1 and 2", "TX", on_mask(lambda a: np.where(a > 0, 1 + np.indices(a.shape)[0] % 2, 0)),
     {}, "excluded", "tumor mask holds several labels (1, 2)", MASK),
    ("empty mask", "TX", on_mask(np.zeros_like), {}, "excluded", "tumor mask is empty", MASK),
    ("interpolated float mask", "TX", on_mask(lambda a: a * 0.37, np.float32), {}, "excluded",
     "mask values are not labels (e.g. 0.37)", MASK),
    ("lesion lost on the ingest grid", "TX", tiny_lesion, {"spacing_mm": [12.0, 12.0, 12.0]},
     "excluded", "has no voxel left on the ingest grid", MASK),
    ("one mask missing", "TX", remove_mask, {}, "excluded", "no tumor mask (<id>.nii.gz)", None),
    ("masks named otherwise", "TX", rename_masks, {}, "error",
     "tumor masks are missing: none of the 2 patient(s) has one", None),
    ("image missing", "TX", remove_image, {}, "excluded", "in the clinical table but no image", None),
    ("image without a row", "TX", image_without_row, {}, "excluded-other", "image without a row", None),
    ("liver mask of many organs", "TB", liver_labels, {}, "excluded", "liver mask holds 5 labels", "{liver}"),
    ("empty liver mask", "TB", empty_liver, {}, "excluded", "liver mask is empty", "{liver}"),
    # --- DICOM series
    ("DICOM slice cut short", "TB", truncate_slice, {}, "excluded", "cannot decode pixel data of", "{folder}"),
    ("DICOM header cut short", "TB", truncate_header, {}, "excluded", "1 damaged DICOM file(s): "
     "S03_IM0011.dcm", "{folder}"),
    ("DICOM slice missing", "TB", drop_slice, {}, "excluded", "non-uniform slice spacing", "{folder}"),
    ("DICOM slice twice", "TB", duplicate_slice, {}, "warned", "duplicates the position of another slice", None),
    ("DICOM stray slice", "TB", stray_orientation, {}, "warned", "another orientation than the rest", None),
    ("DICOM without RescaleIntercept", "TB", every_slice(no_intercept), {}, "excluded",
     "stored values without the RescaleIntercept", "{folder}"),
    ("DICOM RescaleSlope 2", "TB", every_slice(slope_two), {}, "excluded",
     "not a CT in HU (a wrong RescaleSlope", "{folder}"),
    ("DICOM gantry tilt", "TB", every_slice(tilt), {}, "excluded", "gantry tilt of 12 degrees", "{folder}"),
    ("two portal series", "TB", second_portal_series, {}, "excluded",
     "2 series match phase.series_description", "{folder}"),
    ("SEG of another patient", "TB", seg_of_other_series, {}, "excluded",
     "the SEG references another series than the one picked", "{seg}"),
    ("SEG cut short", "TB", truncate_seg, {}, "excluded", "not a readable DICOM-SEG", "{seg}"),
    # --- clinical tables
    ("semicolon CSV", "TX", csv_as(sep=";"), {}, "error", "its header is semicolon-separated", None),
    ("Latin-1 CSV", "TX", latin1, {}, "error", "the table is not UTF-8", None),
    ("UTF-16 CSV", "TX", csv_as(encoding="utf-16"), {}, "error", "the table is UTF-16 encoded", None),
    ("duplicated row", "TX", table(duplicated_row), {}, "error", "duplicated patient ID", None),
    ("row without ID", "TX", table(missing_id), {}, "error", "row 1 has no patient ID", None),
    ("header pasted twice", "TX", table(header_twice), {}, "error", "not a number: 'age'", None),
    ("IDs of another format", "TX", table(numeric_ids), {}, "error", "no image matches a row of the clinical table", None),
    ("AFP given as '<20'", "TX", cell("afp_ng_ml", "<20"), {}, "error", "column afp_ng_ml: not a number: '<20'", None),
    ("decimal comma", "TX", cell("age", "61,5"), {}, "error", "(a decimal comma?", None),
    ("sex coded 1/2", "TX", cell("sex", 1), {}, "error", "column sex: unknown code '1' (allowed: M, F)", None),
    ("a date as OS", "TX", cell("os_days", "2019-03-05"), {}, "error", "column os_days: not a number: '2019-03-05'", None),
    ("negative OS", "TX", cell("os_days", -30), {}, "error", "non-positive event time -30 days", None),
    ("MVI after the end of follow-up", "TX", cell("time_to_mvi_days", 99999), {}, "error",
     "time to MVI 99999 days after the end of follow-up", None),
    ("Child-Pugh C with BCLC A", "TX", then(cell("child_pugh", "C"), cell("bclc", "A")), {}, "error",
     "Child-Pugh C with BCLC stage A", None),
    ("age in months", "TX", with_mapping({"id_column": "patient_id", "columns": {
        "age": {"from": "age", "unit": "months"}}}), {}, "error", "implausible median", None),
    ("OS in cm", "TX", with_mapping({"id_column": "patient_id", "columns": {
        "os_days": {"from": "os_days", "unit": "cm"}}}), {}, "error", "unit 'cm' is a length unit", None),
    ("mapping typo", "TX", with_mapping({"id_colum": "patient_id"}), {}, "error", "unknown key(s) id_colum", None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_damage_is_never_accepted_silently(centers, case):
    name, center, damage, settings, outcome_kind, text, file_key = case
    root, all_centers = centers
    clean_data, keep, clean = all_centers[center]
    label = "".join(ch for ch in name if ch.isalnum())[:24]
    data = td.copy(clean_data, root, label)
    damage(data, keep)
    outcome = td.ingest(data, root, label, **settings)
    bad, good = keep
    e = td.entry(data)
    files = {"{image}": str(data / e["images"] / f"{bad}.nii.gz"),
             "{mask}": str(data / e["tumor_masks"] / f"{bad}.nii.gz"),
             "{liver}": str(data / e.get("liver_masks", "-") / f"{bad}.nii.gz"),
             "{folder}": str(data / e["images"] / bad),
             "{seg}": str(data / e["tumor_masks"] / f"{bad}.dcm")}
    if outcome_kind == "error":
        assert outcome.error is not None, f"{name}: accepted"
        message = str(outcome.error)
        assert message.startswith(f"center {label}"), message
        assert text in message, message
        assert not (outcome.out / "clinical.tsv").exists()
        return
    assert outcome.error is None, f"{name}: {outcome.error}"
    if outcome_kind == "excluded":
        reason = outcome.reason(bad)
        assert text in reason, reason
        if file_key:
            assert reason.startswith(files[file_key] + ": "), reason
            assert "(fix: " in reason, reason
        kept = [good]
    elif outcome_kind == "excluded-other":
        assert text in outcome.exclusions.reason.str.cat(sep=" | ")
        kept = keep
    else:  # warned: accepted, the warning in qc.tsv
        assert outcome.exclusions.empty, outcome.exclusions.values.tolist()
        row = outcome.qc[outcome.qc.patient_id == bad].iloc[0]
        assert text in row.warnings, row.warnings
        kept = [good]
    assert sorted(outcome.clinical.patient_id) == sorted(kept + ([bad] if outcome_kind == "warned" else []))
    if "spacing_mm" in settings:  # the clean copy ingested alike
        clean = td.ingest(clean_data, root, f"{label}-clean", **settings)
    for pid in kept:
        assert outcome.digest(pid) == clean.digest(pid), (name, pid)


def test_one_image_under_two_ids_is_refused(centers, tmp_path):
    """The same CT delivered for two patients (a copy-paste in the archive export): rule
    identity refuses the pair, naming both."""
    root, all_centers = centers
    clean_data, keep, _ = all_centers["TX"]
    data = td.copy(clean_data, root, "TWICE")
    for path in (td.image_path(data, keep[0]), td.mask_path(data, keep[0])):
        shutil.copy(path, path.with_name(path.name.replace(keep[0], keep[1])))
    outcome = td.ingest(data, root, "TWICE")
    assert outcome.error is None
    with pytest.raises(Exception) as err:
        identity.check_center("TWICE", "external", outcome.out / "fingerprints.tsv", {},
                              tmp_path / "identity.tsv",
                              {"checks": {"identity": {"action": "error", "min_clinical_fields": 10}}})
    assert str(err.value) == (
        f"center TWICE, patient {keep[1]}: the ingested image equals that of patient {keep[0]} of "
        f"the same center (one image under two patient IDs?) (fix: remove the duplicate from the "
        f"delivery, or set ingest.checks.identity.action: warn for a deliberate test)")


def test_the_cases_are_forty_or_more():
    assert len(CASES) + 1 >= 40
